"""``digest reads add / list`` and ``digest new``: what the next edition will carry."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from digest.cli.options import ConfigOption, FormatOption, OutputFormat, console, write_rows
from digest.errors import DigestError, ReadError
from digest.words import plural

if TYPE_CHECKING:  # each command imports what it runs on when it runs (`--help` stays quick)
    from digest.settings import Settings

app = typer.Typer(help="Recommended reads for the next edition.", no_args_is_help=True)


@app.command()
def add(
    url: Annotated[str, typer.Argument(help="The piece's address (http or https).")],
    title: Annotated[str | None, typer.Option("--title", help="Default: the page's title.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="The outlet, e.g. 'Reuters'.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A line on why it's worth it.")] = None,
    config: ConfigOption = None,
) -> None:
    """Queue a read for the next edition (the page's title is fetched when not given)."""
    from digest.assemble import queue as reads_store
    from digest.assemble.feeds import page_title
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.edition.model import Read
    from digest.settings import load_settings

    settings = load_settings(config)
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DigestError(f"{url!r} is not an http:// or https:// address")
    if not title:
        try:
            title = page_title(url.strip(), settings.reads.fetch_timeout_seconds)
        except ReadError as exc:
            raise ReadError(f"{exc}; to add it anyway, give its title with --title") from exc
    read = Read(title=" ".join(title.split()), url=url.strip(), source=source, note=note)
    with open_database(settings.database_url) as db, db.transaction() as session:
        _, added = reads_store.queue(session, read, utc_now())
    console().print(
        f"queued for the next edition: {read.title} <{read.url}>"
        if added
        else f"already queued: {read.url}",
        markup=False,
    )


@app.command("list")
def list_(
    day: Annotated[
        str | None, typer.Option("--date", help="The edition's date (default: today).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Show the reads the next edition will carry (queued, from feeds, deduplicated, capped)."""
    from rich.table import Table

    from digest.assemble.day import assemble, edition_path, gather
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.settings import load_settings

    settings = load_settings(config)
    when = _day(day, settings)
    now = utc_now()
    with open_database(settings.database_url) as db:
        if edition_path(settings, when).is_file():
            assembled = assemble(db, settings, when, now)
            chosen, problems = list(assembled.for_preview().reads), assembled.problems
            origins = list(assembled.origins)
        else:
            gathered = gather(db, settings.reads, when, now)
            chosen, problems, origins = gathered.reads, gathered.problems, gathered.origins
    err = console(stderr=True)
    for problem in problems:
        err.print(f"warning: {problem}", markup=False)
    rows = [
        {"title": r.title, "url": r.url, "source": r.source, "note": r.note, "from": o}
        for r, o in zip(chosen, origins, strict=True)
    ]
    if write_rows(rows, fmt, ("title", "url", "source", "note", "from")):
        return
    table = Table("#", "title", "source", "url", "from")
    for number, (read, origin) in enumerate(zip(chosen, origins, strict=True), start=1):
        table.add_row(str(number), read.title, read.source or "", read.url, origin)
    out = console()
    out.print(table)
    out.print(
        f"{plural(len(chosen), 'read', 'reads')} for the edition of {when.isoformat()}",
        markup=False,
    )


def _day(value: str | None, settings: Settings) -> date:
    from digest.clock import today
    from digest.edition.dates import parse_date

    if value is None:
        return today(settings.schedule.zone)
    parsed = parse_date(value)
    if parsed is None:
        raise DigestError(f"{value!r} is not a date: use YYYY-MM-DD")
    return parsed


def new(
    day: Annotated[
        str | None, typer.Argument(metavar="DATE", help="YYYY-MM-DD (default: today).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write a skeleton edition file to fill in, and say where it is."""
    from digest.assemble.day import edition_path
    from digest.edition.files import write_atomic
    from digest.edition.model import default_title
    from digest.edition.skeleton import SKELETON
    from digest.settings import load_settings

    settings = load_settings(config)
    when = _day(day, settings)
    path = edition_path(settings, when)
    if path.exists():
        raise DigestError(f"{path} already exists; edit it, or move it away first")
    write_atomic(path, SKELETON.format(day=when.isoformat(), title=default_title(when)))
    console().print(
        f"wrote {path}: fill in the dek (summary), the sections and any reads in place of "
        "the sample text (it is never sent), then "
        f"`digest check {when.isoformat()}` and `digest preview {when.isoformat()} --open`",
        markup=False,
    )
