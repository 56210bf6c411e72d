"""``digest subscribers …``: the audience from the command line."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.options import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    console,
    for_screen,
    write_json,
    write_rows,
)
from digest.words import plural
from subscribers.errors import AudienceError
from subscribers.states import Status

if TYPE_CHECKING:  # each command imports what it runs on when it runs (`--help` stays quick)
    from contextlib import closing

    from digest.send.transport import Transport
    from digest.settings import Settings
    from subscribers.db import Database
    from subscribers.models import Subscriber

app = typer.Typer(help="Manage who receives the briefing.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(help="The subscriber's email address.")]


def _database(config: Path | None) -> Database:
    from digest.database import open_database
    from digest.settings import load_settings

    return open_database(load_settings(config).database_url)


@app.command()
def add(
    email: EmailArgument,
    name: Annotated[str | None, typer.Option("--name", help="The person's name.")] = None,
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Active at once: you attest the person consented.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add one subscriber (pending until confirmed, unless --confirmed)."""
    from digest.clock import utc_now
    from digest.send.confirmations import Confirmations
    from digest.settings import load_settings
    from subscribers import audience
    from subscribers.addresses import parse_address
    from subscribers.models import ConsentMethod

    address = parse_address(email)
    settings = load_settings(config)
    with _database(config) as db:
        with db.transaction() as session:
            joined = audience.join(
                session,
                address,
                utc_now(),
                audience.ConsentEvidence(
                    ConsentMethod.editor, form_version="digest subscribers add"
                ),
                name=name,
                confirmed=confirmed,
            )
            session.flush()
            status = joined.subscriber.status.value
            subscriber_id = joined.subscriber.id
        out = console()
        out.print(f"{address.typed}: {joined.outcome.value} ({status})", markup=False)
        if joined.needs_confirmation:
            confirmations = Confirmations.from_settings(settings)
            with _transport(settings) as transport:
                if confirmations.send_one(db, transport, subscriber_id):
                    out.print(
                        f"confirmation email sent to {address.typed} via {transport.description}",
                        markup=False,
                    )
                else:
                    out.print(
                        "a confirmation email went out less than "
                        f"{plural(settings.subscribers.resend_minutes, 'minute', 'minutes')} ago; "
                        "not sent again",
                        markup=False,
                    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with an 'email' column; 'name' optional.")],
    confirmed: Annotated[
        bool,
        typer.Option("--confirmed", help="Import as active: you attest every person consented."),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Write rejected rows, with reasons, to this CSV."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Import subscribers from CSV: streamed, batch by batch, with a report."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from digest.clock import utc_now
    from digest.database import open_database
    from digest.settings import load_settings
    from subscribers.csv_import import import_csv

    if not file.is_file():
        raise AudienceError(f"{file} does not exist or is not a file")
    total = file.stat().st_size
    reject_handle = (
        rejects.open("w", encoding="utf-8", errors="surrogateescape", newline="")
        if rejects
        else None
    )
    err = console(stderr=True)
    settings = load_settings(config)
    try:
        with (
            open_database(settings.database_url) as db,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("import", total=total, rows=0)
            report = import_csv(
                db,
                file,
                utc_now,
                confirmed=confirmed,
                rejects=reject_handle,
                progress=lambda done, rows: bar.update(task, completed=done, rows=rows),
            )
    finally:
        if reject_handle is not None:
            reject_handle.close()
    out = console()
    out.print(f"read as {report.encoding}", markup=False)
    out.print(
        f"{plural(report.rows, 'row', 'rows')}: {report.added:,} added, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged, {report.rejected:,} rejected"
        + (
            f" ({plural(report.duplicates, 'as a duplicate', 'as duplicates')})"
            if report.duplicates
            else ""
        )
    )
    for rejection in report.rejections:
        out.print(f"  row {rejection.row}: {rejection.reason}", markup=False)
    if report.rejected > len(report.rejections):
        out.print(f"  … and {report.rejected - len(report.rejections):,} more (see --rejects FILE)")
    if rejects is not None and report.rejected:
        out.print(f"rejected rows written to {rejects}")
    if report.pending:
        out.print(
            f"{plural(report.pending, 'new subscriber is', 'new subscribers are')} pending "
            "until they confirm."
        )
    if report.rows and report.rejected == report.rows:
        console(stderr=True).print(
            f"nothing was imported: every row of {file} was rejected", markup=False
        )
        raise typer.Exit(1)
    if not confirmed:
        _send_due_confirmations(settings)


@app.command()
def confirmations(config: ConfigOption = None) -> None:
    """Send the confirmation email to every pending subscriber who has not had one."""
    from digest.settings import load_settings

    _send_due_confirmations(load_settings(config))


def _send_due_confirmations(settings: Settings) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from digest.clock import utc_now
    from digest.database import open_database
    from digest.errors import TransportError
    from digest.send.confirmations import Confirmations, count_due

    out = console()
    with open_database(settings.database_url) as db:
        total = count_due(db)
        if not total:
            out.print("no pending subscriber is waiting for a confirmation email")
            return
        mail = Confirmations.from_settings(settings)
        with (
            _transport(settings) as transport,
            Progress(
                TextColumn("confirmation emails"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console(stderr=True),
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("send", total=total)
            try:
                report = mail.send_due(
                    db, transport, utc_now, lambda done: bar.update(task, completed=done)
                )
            except TransportError as exc:
                raise TransportError(
                    f"{exc}\nconfirmation emails stopped; those sent are recorded. Fix the "
                    "delivery settings and run `digest subscribers confirmations` to send the rest."
                ) from exc
        out.print(
            f"{plural(report.sent, 'confirmation email', 'confirmation emails')} sent via "
            f"{transport.description}" + (f", {report.failed:,} refused:" if report.failed else "")
        )
        for problem in report.problems:
            out.print(f"  {problem}", markup=False)


def _transport(settings: Settings) -> closing[Transport]:
    from contextlib import closing

    from digest.send.transport import open_delivery

    return closing(open_delivery(settings))


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Output CSV; stdout if omitted.")] = None,
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    config: ConfigOption = None,
) -> None:
    """Export subscribers as CSV, safe to open in a spreadsheet."""
    from digest.edition.files import atomic_output
    from subscribers.csv_export import export_csv

    with _database(config) as db, db.transaction() as session:
        if file is None:
            export_csv(session, for_screen(sys.stdout), status)
            return
        with atomic_output(file) as handle:
            count = export_csv(session, handle, status)
    console(stderr=True).print(
        f"exported {plural(count, 'subscriber', 'subscribers')} to {file}", markup=False
    )


def _row(subscriber: Subscriber) -> dict[str, str]:
    return {
        "email": subscriber.email,
        "name": subscriber.name or "",
        "status": subscriber.status.value,
        "since": subscriber.status_changed_at.isoformat(timespec="seconds"),
    }


@app.command("list")
def list_(
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    fmt: FormatOption = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """List subscribers."""
    from rich.table import Table
    from sqlalchemy import select

    from subscribers.models import Subscriber

    with _database(config) as db, db.transaction() as session:
        query = select(Subscriber).order_by(Subscriber.id)
        if status is not None:
            query = query.where(Subscriber.status == status)
        rows = [_row(s) for s in session.scalars(query)]
    # verbatim: the addresses exactly as stored (`digest subscribers export` is for spreadsheets)
    if not write_rows(rows, fmt, ("email", "name", "status", "since"), verbatim=True):
        table = Table("email", "name", "status", "since")
        for row in rows:
            table.add_row(*row.values())
        out = console()
        out.print(table)
        out.print(plural(len(rows), "subscriber", "subscribers"))


class ShowFormat(StrEnum):
    json = "json"
    table = "table"


@app.command()
def show(
    email: EmailArgument,
    fmt: Annotated[
        ShowFormat, typer.Option("--format", help="json (everything, for the person) or table.")
    ] = ShowFormat.json,
    config: ConfigOption = None,
) -> None:
    """Everything stored about one person, their mail and deliveries included
    (for a subject-access request)."""
    from digest.cli.subject_access import print_person
    from digest.feedback import person
    from subscribers import audience

    with _database(config) as db, db.transaction() as session:
        data = person.person_data(session, audience.get(session, email))
    if fmt is ShowFormat.json:
        write_json(data)
    else:
        print_person(console(), data)


@app.command()
def unsubscribe(email: EmailArgument, config: ConfigOption = None) -> None:
    """Unsubscribe one person (idempotent)."""
    from digest.clock import utc_now
    from subscribers import audience

    with _database(config) as db, db.transaction() as session:
        subscriber = audience.get(session, email)
        changed = audience.unsubscribe(session, subscriber, utc_now(), "by an editor")
        status = subscriber.status.value
    note = "unsubscribed" if changed else f"already {status}"
    console().print(f"{email.strip()}: {note}", markup=False)


@app.command()
def erase(
    email: EmailArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete everything stored about one person (their mail too), keeping only a hash so
    no import re-adds them; their deliveries stay as anonymous rows."""
    from digest.clock import utc_now
    from digest.feedback import person

    if not yes and not typer.confirm(f"Erase everything stored about {email.strip()}?"):
        raise typer.Exit(1)
    with _database(config) as db:
        erased = person.erase(db, email, utc_now())
    out = console()
    out.print(f"{email.strip()}: erased; a hashed suppression entry blocks re-adding", markup=False)
    out.print(
        f"{plural(erased.mail, 'filed message', 'filed messages')} from or about them deleted; "
        f"{plural(erased.deliveries, 'delivery row', 'delivery rows')} kept without anything "
        "that names them",
        markup=False,
    )
    if not erased.log_cleared:
        console(stderr=True).print(
            "warning: another process was reading the database, so its write-ahead log "
            "(the -wal file) may still hold the erased bytes until its next checkpoint; "
            "stop the other digest processes and run `sqlite3 DB 'PRAGMA "
            "wal_checkpoint(TRUNCATE)'` to clear it now",
            markup=False,
        )
