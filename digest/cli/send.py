"""``digest send``, ``status``, ``retry``, ``pause`` and ``resume``: the send ledger by hand."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.options import ConfigOption, console
from digest.words import plural, them

if TYPE_CHECKING:  # each command imports what it runs on when it runs (`--help` stays quick)
    from digest.ledger import DeliveryStatus, FrozenEdition
    from digest.send.tally import SendResult
    from digest.settings import Settings
    from subscribers.db import Database

SourceArgument = Annotated[
    str, typer.Argument(help="An edition file, or a date (YYYY-MM-DD) in the editions folder.")
]


def send(
    source: SourceArgument,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Test send to this one address: '[TEST]' subject, not recorded."),
    ] = None,
    new_version: Annotated[
        bool,
        typer.Option(
            "--new-version",
            help="The file changed after sending began: send it as a new edition to everyone.",
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait", help="Leave deferred retries for a later run instead of waiting."
        ),
    ] = False,
    connections: Annotated[
        int | None,
        typer.Option(
            "--connections", min=1, max=64, help="SMTP connections [delivery.connections]."
        ),
    ] = None,
    include_new: Annotated[
        bool,
        typer.Option(
            "--include-new",
            help="Also send it to readers who joined after it was frozen (each still once).",
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Don't ask before mailing the list from a terminal."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Send an edition to every active subscriber; run again to resume."""
    from digest.cli.recipients import ask_before_freezing
    from digest.database import open_database
    from digest.send.publish import freeze_source, send_test
    from digest.settings import load_settings
    from subscribers.addresses import parse_address

    settings = load_settings(config)
    ask = not yes and sys.stdin.isatty()  # a person at a terminal is asked; scripts are not
    if to is not None:
        address = parse_address(to)
        with open_database(settings.database_url) as db:
            where, reply = send_test(db, settings, source, address.typed)
        console().print(f"test send to {address.typed} via {where}: {reply}", markup=False)
        return
    with open_database(settings.database_url) as db:
        frozen = freeze_source(
            db,
            settings,
            source,
            new_version=new_version,
            on_problem=lambda problem: console(stderr=True).print(
                f"warning: {problem}", markup=False
            ),
            probe=True,  # a relay that is down or an outbox that can't be written: freeze nothing
            confirm=ask_before_freezing if ask else None,
        )
        _deliver(
            db,
            settings,
            frozen.edition,
            frozen.created,
            frozen.file_changed,
            connections=connections,
            no_wait=no_wait,
            include_new=include_new,
            ask=ask,
        )


def _deliver(
    db: Database,
    settings: Settings,
    edition: FrozenEdition,
    created: bool,
    file_changed: bool,
    *,
    connections: int | None,
    no_wait: bool,
    include_new: bool = False,
    ask: bool = False,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from digest.cli.recipients import joined_hint, newcomers
    from digest.cli.retry_notice import RetryNotice
    from digest.errors import EditionPausedError
    from digest.ledger import DeliveryStatus
    from digest.send.publish import plan_send
    from digest.send.tally import Tally

    out, err = console(), console(stderr=True)
    if edition.paused_at is not None:
        raise EditionPausedError(
            f"the edition {edition.label} is paused ({edition.pause_reason}); "
            f"`digest resume {edition.date.isoformat()}` lets it go on"
        )
    joined = 0 if created else newcomers(db, edition, include_new=include_new, ask=ask)
    plan = plan_send(
        db,
        settings,
        edition,
        connections=connections,
        wait_for_retries=not no_wait,
        probed=created,  # a new freeze has just probed the transport
    )
    total = sum(plan.counts.values())
    if created:
        out.print(
            f"froze the edition {edition.label}: {plural(total, 'delivery', 'deliveries')} queued",
            markup=False,
        )
    else:
        out.print(
            f"resuming the edition {edition.label} (frozen {edition.frozen_at:%Y-%m-%d %H:%M}): "
            f"{plan.counts[DeliveryStatus.sent]:,} of {total:,} sent",
            markup=False,
        )
    if file_changed:
        err.print(
            "warning: the edition file changed after it was frozen; the frozen version is "
            "sent. To send the changed file to everyone as a new edition, use --new-version.",
            markup=False,
        )
    if plan.open_rows == 0:
        out.print("nothing left to send" + _summary(plan.counts), markup=False)
        joined_hint(edition, joined)
        return
    joined_hint(edition, joined)
    if plan.sender.helper_jobs:
        processes = 1 + len(plan.sender.helper_jobs)
        connections_in_all = plan.sender.settings.connections + sum(
            job.delivery.connections for job in plan.sender.helper_jobs
        )
        err.print(f"sending on {connections_in_all} connections in {processes} processes")
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}", markup=False),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("send", total=plan.open_rows, note="")
        waits = RetryNotice(err)

        def progress(tally: Tally) -> None:
            waits.tell(tally)
            bar.update(task, completed=min(tally.done, plan.open_rows), note=waits.note(tally))

        result = _stoppable(lambda: plan.sender.run(progress))
    _report(db, edition, result, plan.transport)


def _report(db: Database, edition: FrozenEdition, result: SendResult, transport: str) -> None:
    from digest import ledger
    from digest.errors import SendPaused
    from digest.ledger import DeliveryStatus

    out = console()
    with db.transaction() as session:
        counts = ledger.counts(session, edition.id)
    out.print(
        f"this run: {result.sent:,} sent via {transport}, {result.failed:,} failed, "
        f"{result.skipped:,} skipped (left the list)"
        + (f", {plural(result.deferred, 'deferral', 'deferrals')}" if result.deferred else ""),
        markup=False,
    )
    out.print("the edition so far" + _summary(counts), markup=False)
    day = edition.date.isoformat()
    if result.paused:
        raise SendPaused(
            f"the send paused: {result.paused}\nfix the cause, then `digest resume {day}`"
        )
    if result.interrupted:
        out.print(f"interrupted; `digest send {day}` resumes where it stopped", markup=False)
        raise typer.Exit(130)
    if counts[DeliveryStatus.deferred]:
        out.print(
            f"{plural(counts[DeliveryStatus.deferred], 'delivery waits', 'deliveries wait')} "
            f"for a retry; `digest send {day}` sends {them(counts[DeliveryStatus.deferred])} "
            "when due",
            markup=False,
        )
    if counts[DeliveryStatus.failed]:
        out.print(
            f"`digest status {day}` lists the failures; `digest retry {day}` re-queues them",
            markup=False,
        )


def _summary(counts: dict[DeliveryStatus, int]) -> str:
    from digest.ledger import DeliveryStatus

    parts = [f"{counts[s]:,} {s.value}" for s in DeliveryStatus if counts[s]]
    return ": " + ", ".join(parts) if parts else ""


def retry(source: SourceArgument, config: ConfigOption = None) -> None:
    """Re-queue the failed deliveries of an edition, once the cause is fixed."""
    from digest import ledger
    from digest.database import open_database
    from digest.ledger.lookup import frozen_for
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db:
        edition = frozen_for(db, source)
        with db.transaction() as session:
            count, left = ledger.retry_failed(session, edition.id)
    day = edition.date.isoformat()
    out = console()
    out.print(
        f"{plural(count, 'failed delivery', 'failed deliveries')} re-queued; "
        f"`digest send {day}` sends {them(count)}"
        if count
        else "no failed deliveries to re-queue",
        markup=False,
    )
    if left:
        out.print(
            f"{left:,} stay failed: their subscribers are no longer active (bounced, left "
            "or erased)"
            if left > 1
            else "1 stays failed: its subscriber is no longer active (bounced, left or erased)",
            markup=False,
        )


OptionalSource = Annotated[
    str | None,
    typer.Argument(help="An edition's date or file; without it, every edition it applies to."),
]


def _editions(db: Database, source: str | None, paused: bool) -> list[FrozenEdition]:
    """The named edition, or every one still sending (paused=False) / paused (True)."""
    from digest import ledger
    from digest.ledger.lookup import frozen_for

    if source is not None:
        return [frozen_for(db, source)]
    with db.transaction() as session:
        found = ledger.unfinished(session, paused=paused)
        session.expunge_all()
    return found


def pause(source: OptionalSource = None, config: ConfigOption = None) -> None:
    """Pause a send (or every unfinished one); running senders stop after their batch."""
    from digest import ledger
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.settings import load_settings

    settings = load_settings(config)
    out = console()
    with open_database(settings.database_url) as db:
        editions = _editions(db, source, paused=False)
        if not editions:
            out.print("no send is running unpaused; nothing to pause")
        for edition in editions:
            with db.transaction() as session:
                changed = ledger.set_paused(session, edition.id, "paused by an editor", utc_now())
            day = edition.date.isoformat()
            out.print(
                f"{day}: paused; `digest resume {day}` goes on"
                if changed
                else f"{day}: already paused",
                markup=False,
            )


def resume(
    source: OptionalSource = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Don't wait for deferred retries.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Lift a pause (of one edition, or of every paused one) and go on sending."""
    from digest import ledger
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db:
        editions = _editions(db, source, paused=True)
        if not editions:
            console().print("no edition is paused; nothing to resume")
        for edition in editions:
            with db.transaction() as session:
                ledger.set_paused(session, edition.id, None, utc_now())
            edition.paused_at = edition.pause_reason = None
            _deliver(db, settings, edition, False, False, connections=None, no_wait=no_wait)


def register(app: typer.Typer) -> None:
    from digest.cli.status import status

    for command in (send, status, retry, pause, resume):
        app.command()(command)


def _stoppable(run: Callable[[], SendResult]) -> SendResult:
    """``run`` with SIGTERM (systemd, docker stop, ``timeout``) handled like Ctrl-C: the
    senders stop between messages and record every outcome they hold before exiting."""
    if threading.current_thread() is not threading.main_thread():
        return run()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run()
    finally:
        signal.signal(signal.SIGTERM, previous)
