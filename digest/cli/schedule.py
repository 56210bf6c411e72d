"""``digest schedule SOURCE --at TIME`` and ``digest schedule list / cancel / move``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from digest.cli.options import ConfigOption, FormatOption, OutputFormat, console, write_rows
from digest.errors import DigestError, ScheduleError
from digest.words import plural

if TYPE_CHECKING:  # each command imports what it runs on when it runs (`--help` stays quick)
    from digest.settings import Settings
    from subscribers.db import Database

AtOption = Annotated[
    str,
    typer.Option(
        "--at",
        help="'YYYY-MM-DD HH:MM' in the publication's time zone, or ISO 8601 with an offset.",
    ),
]


class _SourceOrCommand(TyperGroup):
    """``schedule SOURCE --at T`` schedules; ``schedule list|cancel|move …`` manage."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["add", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, "SOURCE --at TIME [--config PATH]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")


app = typer.Typer(
    cls=_SourceOrCommand,
    help="Schedule an edition's send (`digest schedule SOURCE --at TIME`); list, cancel or "
    "move scheduled jobs.\n\n"
    "SOURCE is an edition file, or a date (YYYY-MM-DD) in the editions folder. TIME is "
    "'YYYY-MM-DD HH:MM' in the publication's time zone [schedule.timezone], or ISO 8601 "
    "with an offset. The edition is checked now, and again when its send fires.",
    no_args_is_help=True,
)


@app.command("add", hidden=True)
def add(
    source: Annotated[str, typer.Argument(help="An edition file or date.")],
    at: AtOption,
    config: ConfigOption = None,
) -> None:
    """Schedule SOURCE to be sent at a time (checked now, and again when it fires)."""
    from digest.assemble.day import assemble_source
    from digest.database import open_database
    from digest.render.renderer import Renderer, render_edition
    from digest.schedule.scheduler import add_send, job_store, parse_at
    from digest.settings import load_settings

    settings = load_settings(config)
    when = parse_at(at, settings.schedule.zone, datetime.now(UTC))
    with open_database(settings.database_url) as db:
        # the edition as it will go out: errors now, naming the file, not at 7 a.m.
        assembled = assemble_source(db, settings, source, datetime.now(UTC))
        edition, path = assembled.require(), assembled.path
        render_edition(Renderer.from_settings(settings), edition)
        _refuse_if_sent(db, settings, edition.date, assembled.sha256)
        with job_store(db, settings) as jobs:
            job_id = add_send(jobs, edition.date, str(path.resolve()), when, _config(config))
    local = when.astimezone(settings.schedule.zone)
    console().print(
        f"scheduled {edition.date.isoformat()} ({path}) for {local:%Y-%m-%d %H:%M %Z}: "
        f"job {job_id}; `digest run` sends it",
        markup=False,
    )


@app.command("list")
def list_(
    fmt: FormatOption = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Every scheduled job: id, what, next run time, state."""
    from rich.table import Table

    from digest.database import open_database
    from digest.schedule.scheduler import job_store, list_jobs
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db, job_store(db, settings) as jobs:
        found = list_jobs(jobs)
    rows = [job.as_json() for job in found]
    if write_rows(rows, fmt, ("id", "what", "edition", "next_run_time", "state")):
        return
    table = Table("id", "what", "next run", "state")
    zone = settings.schedule.zone
    for job in found:
        when = (
            job.next_run_time.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            if job.next_run_time
            else "-"
        )
        table.add_row(job.id, job.what, when, job.state)
    out = console()
    out.print(table)
    out.print(f"{plural(len(found), 'job', 'jobs')}; times in {zone.key}", markup=False)


@app.command("cancel")
def cancel_(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="From `digest schedule list`.")],
    config: ConfigOption = None,
) -> None:
    """Cancel a scheduled send."""
    from digest.database import open_database
    from digest.schedule.scheduler import cancel, job_store
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db, job_store(db, settings) as jobs:
        cancel(jobs, job_id)
    console().print(f"cancelled {job_id}", markup=False)


@app.command("move")
def move_(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="From `digest schedule list`.")],
    at: AtOption,
    config: ConfigOption = None,
) -> None:
    """Move a scheduled send to another time."""
    from digest.database import open_database
    from digest.schedule.scheduler import job_store, move, parse_at
    from digest.settings import load_settings

    settings = load_settings(config)
    when = parse_at(at, settings.schedule.zone, datetime.now(UTC))
    with open_database(settings.database_url) as db, job_store(db, settings) as jobs:
        move(jobs, job_id, when)
    local = when.astimezone(settings.schedule.zone)
    console().print(f"moved {job_id} to {local:%Y-%m-%d %H:%M %Z}", markup=False)


def _refuse_if_sent(db: Database, settings: Settings, day: date, sha256: str) -> None:
    """An edition frozen with nothing left to send: a scheduled send would do nothing."""
    from digest import ledger
    from digest.ledger import DeliveryStatus

    with db.transaction() as session:
        frozen = ledger.latest(session, day)
        if frozen is None:
            return
        counts = ledger.counts(session, frozen.id)
        joined = ledger.newcomers(session, frozen.id)
    if any(counts[status] for status in ledger.OPEN):
        return  # unfinished: the scheduled send resumes it
    iso, sent = day.isoformat(), counts[DeliveryStatus.sent]
    others = [
        f"{counts[s]:,} {s.value}"
        for s in DeliveryStatus
        if counts[s] and s is not DeliveryStatus.sent
    ]
    said = (
        f"the edition {frozen.label} was already sent (sending began "
        f"{frozen.frozen_at.astimezone(settings.schedule.zone):%Y-%m-%d %H:%M %Z}) to "
        f"{plural(sent, 'reader', 'readers')}"
        + (f" ({', '.join(others)})" if others else "")
        + "; a scheduled send would send nothing."
    )
    if joined:
        said += (
            f" {plural(joined, 'reader', 'readers')} joined since: "
            f"`digest send {iso} --include-new` sends it to them."
        )
    if sha256 != frozen.source_sha256:
        said += (
            f" The file changed since: `digest send {iso} --new-version` sends the changed "
            "file to everyone as a new edition."
        )
    elif not joined:
        said += (
            f" To send it to everyone again as a new edition: `digest send {iso} --new-version`."
        )
    raise ScheduleError(said)


def _config(config: object) -> str | None:
    return str(config) if config is not None else None


def approve(
    day: Annotated[str, typer.Argument(metavar="DATE", help="The edition's date, YYYY-MM-DD.")],
    config: ConfigOption = None,
) -> None:
    """Approve the day's edition (schedule.policy = "approval") so it goes out on time."""
    import getpass

    from digest import ledger
    from digest.database import open_database
    from digest.edition.dates import parse_date
    from digest.settings import load_settings

    settings = load_settings(config)
    when = parse_date(day)
    if when is None:
        raise DigestError(f"{day!r} is not a date: use YYYY-MM-DD")
    who = getpass.getuser()
    with open_database(settings.database_url) as db, db.transaction() as session:
        fresh = ledger.approve(session, when, who, datetime.now(UTC))
    policy = settings.schedule.policy
    note = "" if policy == "approval" else f" (schedule.policy is {policy!r}: not needed)"
    said = (
        f"approved the edition of {when.isoformat()}; it goes out at {settings.schedule.daily_at}"
        if fresh
        else f"the edition of {when.isoformat()} was already approved"
    )
    console().print(said + note, markup=False)
