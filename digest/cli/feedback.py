"""``digest feedback``: file readers' mail, and read it."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.options import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    console,
    for_screen,
    shown,
    write_csv,
    write_rows,
)
from digest.errors import DigestError
from digest.feedback.kinds import Kind
from digest.words import plural

if TYPE_CHECKING:  # each command imports what it runs on when it runs (`--help` stays quick)
    from _typeshed import SupportsWrite
    from rich.progress import Progress

    from digest.feedback.screen import Screened
    from digest.feedback.store import FilingReport

app = typer.Typer(
    help="Readers' replies, suggestions, bounces and complaints, filed by edition.",
    no_args_is_help=True,
)


def _summary(report: FilingReport) -> None:
    from digest.feedback.kinds import counted

    out = console()
    kinds = counted(report.kinds)
    out.print(
        f"{plural(report.seen, 'message', 'messages')}: {report.stored:,} stored, "
        f"{report.duplicates:,} already stored" + (f"; filed as {kinds}" if kinds else ""),
        markup=False,
    )
    if report.unparsed:
        out.print(
            f"{report.unparsed:,} could not be parsed: kept raw and listed as other "
            "(`digest feedback list --kind other`)",
            markup=False,
        )
    for effect in report.effects:
        out.print(f"  {effect}", markup=False)
    for origin, reason in report.not_stored:
        console(stderr=True).print(f"NOT STORED {origin}: {reason}", markup=False)


def _bar(total: int | None) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("filing"),
        BarColumn(),
        MofNCompleteColumn() if total else TextColumn("{task.completed:,}"),
        console=console(stderr=True),
        transient=True,
    )


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A .eml file, a Maildir folder or an mbox file.")],
    config: ConfigOption = None,
) -> None:
    """File messages from files, skipping what is no mail and our own outgoing copies;
    exits non-zero if some could not be stored, or nothing was filed."""
    from digest.database import open_database
    from digest.feedback.screen import Screen
    from digest.feedback.sources import FileSource
    from digest.feedback.store import Filer
    from digest.settings import load_settings

    settings = load_settings(config)
    source = FileSource(path)
    total = source.count()
    with open_database(settings.database_url) as db, _bar(total) as bar:
        task = bar.add_task("file", total=total)
        screen = Screen(db, settings)
        skipped = screen.screened
        report = Filer(db, settings).file(
            screen.sift(source),
            progress=lambda r: bar.update(task, completed=r.seen + skipped.not_mail + skipped.own),
        )
    report.not_stored += source.unreadable
    _skipped(skipped)
    _summary(report)
    if report.not_stored:
        raise typer.Exit(1)
    if (report.seen or skipped.not_mail or skipped.own) and not (
        report.stored or report.duplicates
    ):
        console(stderr=True).print(f"nothing was filed from {path}", markup=False)
        raise typer.Exit(1)


def _skipped(skipped: Screened) -> None:
    out = console()
    if skipped.own:
        out.print(
            f"{plural(skipped.own, 'copy', 'copies')} of our own outgoing mail skipped "
            "(sent by this publication, not readers' mail)",
            markup=False,
        )
    if skipped.not_mail:
        out.print(
            f"{plural(skipped.not_mail, 'item', 'items')} skipped, not mail messages:",
            markup=False,
        )
    for origin, reason in skipped.reasons:
        out.print(f"  {origin}: {reason}", markup=False)
    if skipped.not_mail > len(skipped.reasons):
        out.print(f"  … and {skipped.not_mail - len(skipped.reasons):,} more", markup=False)


@app.command()
def fetch(
    url: Annotated[
        str | None, typer.Option("--url", help="An IMAP URL instead of feedback.imap_url.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """File what is new in the contact mailbox (IMAP); `digest run` does this every few minutes."""
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.feedback.imap import Fetcher
    from digest.feedback.store import Filer
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db, _bar(None) as bar:
        fetcher = Fetcher(db, settings.feedback, Filer(db, settings), url)
        task = bar.add_task("fetch", total=None)
        report = fetcher.fetch(
            utc_now, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if report.uidvalidity_changed:
        console(stderr=True).print(
            f"{report.mailbox}: the server renumbered the folder (new UIDVALIDITY); read it "
            "again from the start, skipping what was already stored",
            markup=False,
        )
    console().print(f"{report.mailbox}: {report.fetched:,} new", markup=False)
    for warning in report.warnings:
        console(stderr=True).print(f"warning: {warning}", markup=False)
    _summary(report.filing)
    if report.filing.not_stored:
        raise typer.Exit(1)


@app.command()
def listen(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [feedback.listen_host].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [feedback.listen_port].")] = None,
    config: ConfigOption = None,
) -> None:
    """Receive readers' mail by SMTP (for an MX or forwarding rule pointed here)."""
    import signal
    import threading

    from digest.database import open_database
    from digest.feedback.classify import Mailboxes
    from digest.feedback.listen import start_listener
    from digest.feedback.store import Filer
    from digest.settings import load_settings

    settings = load_settings(config)
    feedback = settings.feedback
    mailboxes = Mailboxes.from_settings(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_database(settings.database_url) as db:
        try:
            controller = start_listener(
                Filer(db, settings),
                mailboxes,
                [str(a) for a in feedback.addresses],
                host or feedback.listen_host,
                port or feedback.listen_port,
                int(feedback.max_message_mb * 1024 * 1024),
            )
        except (OSError, RuntimeError) as exc:
            where = f"{host or feedback.listen_host}:{port or feedback.listen_port}"
            raise DigestError(f"cannot listen on {where}: {exc}") from exc
        console().print(
            f"accepting mail for {mailboxes.contact}, {'+'.join(mailboxes.unsubscribe[:1])}"
            f"[+TOKEN]@{mailboxes.unsubscribe[1]} and {mailboxes.bounce[0]}[+TOKEN]@"
            f"{mailboxes.bounce[1]} on {controller.hostname}:{controller.port}; Ctrl-C stops",
            markup=False,
        )
        try:
            stop.wait()
        finally:
            controller.stop()


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from exc


@app.command("list")
def list_(
    edition: Annotated[
        str | None, typer.Option(help="Only replies to this edition (date).")
    ] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only this kind.")] = None,
    since: Annotated[str | None, typer.Option(help="Only received on or after this date.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include auto replies.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    fmt: FormatOption = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Filed messages, newest first; auto replies only with --all or --kind auto_reply."""
    from digest.database import open_database
    from digest.feedback.query import FIELDS, Filter, list_feedback
    from digest.settings import load_settings

    settings = load_settings(config)
    since_day = _day(since, "--since")
    wanted = Filter(
        edition=_day(edition, "--edition"),
        kind=kind,
        since=datetime.combine(since_day, datetime.min.time(), UTC) if since_day else None,
        include_auto=all_,
        limit=limit,
    )
    with open_database(settings.database_url) as db, db.transaction() as session:
        rows = list_feedback(session, wanted)
    if not write_rows(rows, fmt, FIELDS):
        _table(rows)


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    out = console()
    if not rows:
        out.print("nothing filed matches")
        return
    table = Table("id", "received", "kind", "edition", "from", "subject", "text")
    for row in rows:
        text = " ".join((row["text"] or "").split())
        table.add_row(
            str(row["id"]),
            row["received_at"][:16].replace("T", " "),
            row["kind"],
            row["edition"] or "",
            shown(row["from"]),
            shown(row["subject"]),
            shown(text[:80] + ("…" if len(text) > 80 else "")),
        )
    out.print(table)


def _write_csv(handle: SupportsWrite[str], rows: list[dict[str, Any]]) -> int:
    from digest.feedback.query import FIELDS

    return write_csv(rows, FIELDS, handle)


@app.command("show")
def show_(
    feedback_id: Annotated[
        int, typer.Argument(metavar="ID", help="The id from `digest feedback list`.")
    ],
    config: ConfigOption = None,
) -> None:
    """One message: its headers and links, the reader's words, then the full text."""
    from digest.database import open_database
    from digest.feedback.query import show
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db, db.transaction() as session:
        found = show(session, feedback_id)
        if found is None:
            raise DigestError(f"no filed message has the id {feedback_id}")
        item = found.feedback
        lines = [
            f"id:          {item.id}",
            f"received:    {found.record['received_at']} (from {item.origin})",
            f"from:        {item.from_name + ' ' if item.from_name else ''}<{item.from_email or ''}>",
            f"subject:     {item.subject or ''}",
            f"date:        {item.sent_at.isoformat() if item.sent_at else '(none)'}",
            f"message-id:  {item.message_id or '(none)'}",
            f"kind:        {item.kind}"
            + (
                f" ({'permanent' if item.permanent else 'temporary'})"
                if item.kind == "bounce"
                else ""
            ),
            f"edition:     {found.record['edition'] or '(none)'}",
            f"subscriber:  {found.record['subscriber'] or '(none)'}"
            + (f" (linked by {item.linked_by})" if item.linked_by else ""),
        ]
        for label, value in (
            ("detail", item.detail),
            ("effect", item.effect),
            ("problem", item.problem),
        ):
            if value:
                lines.append(f"{label + ':':<12} {value}")
        body = [
            "",
            (
                "--- the report " + "-" * 48
                if item.kind in ("bounce", "complaint")
                else "--- the reader's words " + "-" * 40
            ),
            item.text or "(none)",
            "",
            "--- the full text " + "-" * 45,
            item.full_text or "(none)",
        ]
    console().print("\n".join(lines + body), markup=False)  # the console makes escapes visible


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Output CSV; stdout if omitted.")] = None,
    config: ConfigOption = None,
) -> None:
    """Every filed message as CSV (auto replies included), newest first."""
    from digest.database import open_database
    from digest.edition.files import atomic_output
    from digest.feedback.query import Filter, list_feedback
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db, db.transaction() as session:
        rows = list_feedback(session, Filter(include_auto=True))
    if file is None:
        _write_csv(for_screen(sys.stdout), rows)
        return
    with atomic_output(file) as handle:
        count = _write_csv(handle, rows)
    console(stderr=True).print(
        f"exported {plural(count, 'message', 'messages')} to {file}", markup=False
    )
