"""The ``digest`` command. Errors from ``digest.errors`` become a message and exit status 1."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.feedback import app as feedback_app
from digest.cli.helptext import VersionOption, command
from digest.cli.init import init
from digest.cli.notice import settings_notice
from digest.cli.options import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    console,
    shown,
    write_report,
)
from digest.cli.reads import app as reads_app
from digest.cli.reads import new as new_edition
from digest.cli.schedule import app as schedule_app
from digest.cli.schedule import approve as approve_edition
from digest.cli.send import register as register_send_commands
from digest.cli.subscribers import app as subscribers_app
from digest.errors import DigestError, EditionError
from digest.words import plural
from subscribers.errors import AudienceError

if TYPE_CHECKING:  # a command imports what it runs on when it runs: `digest --help` stays quick
    from rich.console import Console
    from rich.text import Text

    from digest.assemble.day import Assembled
    from digest.render.check import CheckReport
    from digest.render.renderer import Renderer
    from digest.settings import Settings

app = typer.Typer(
    name="digest",
    help=(
        "Publish a daily newsletter digest by email: write, check and preview each day's "
        "edition, keep the subscriber list (double opt-in), send and schedule editions with "
        "a per-recipient ledger, serve the sign-up pages, and file readers' replies, "
        "bounces and complaints against the edition they answer."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context, _version: VersionOption = False) -> None:
    """Options of ``digest`` itself (its help is the app's); writers announce their settings."""
    settings_notice(ctx)


def _out() -> Console:
    return console()


def _err() -> Console:
    return console(stderr=True)


app.command()(init)
app.add_typer(subscribers_app, name="subscribers")
register_send_commands(app)
app.add_typer(reads_app, name="reads")
app.add_typer(schedule_app, name="schedule")
app.add_typer(feedback_app, name="feedback")
app.command()(approve_edition)
app.command()(new_edition)


class Format(StrEnum):
    html = "html"
    text = "text"


SourceArgument = Annotated[
    str, typer.Argument(help="An edition file, or a date (YYYY-MM-DD) in the editions folder.")
]
AllowLarge = Annotated[
    bool, typer.Option("--allow-large", help="Render HTML past render.max_html_bytes anyway.")
]


def _renderer(settings: Settings) -> Renderer:
    from digest.render.renderer import Renderer

    return Renderer.from_settings(settings)


@app.command()
def preview(
    source: SourceArgument,
    fmt: Annotated[Format, typer.Option("--format", help="Which part of the email.")] = Format.html,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the result in a browser.")] = False,
    keep_placeholders: Annotated[
        bool,
        typer.Option(
            "--keep-placeholders",
            help="Leave [[recipient fields]] unfilled, as stored for sending.",
        ),
    ] = False,
    allow_large: AllowLarge = False,
    config: ConfigOption = None,
) -> None:
    """Render an edition as one reader will see it (queued and feed reads included)."""
    import webbrowser

    from digest.cli.options import for_screen
    from digest.edition.files import write_atomic
    from digest.render.renderer import personalise, preview_values, render_edition
    from digest.settings import load_settings

    settings = load_settings(config)
    assembled = _assembled(settings, source)
    edition = assembled.for_preview()
    for problem in assembled.skeleton:  # shown, but never sent: say so
        _err().print(f"warning: {problem}", markup=False)
    rendered = render_edition(_renderer(settings), edition, allow_large=allow_large)
    if keep_placeholders:
        html, text = rendered.html, rendered.text
    else:
        html, text = personalise(rendered, preview_values(settings.publication))
    body = html if fmt is Format.html else text
    if out is None and open_it:
        suffix = ".html" if fmt is Format.html else ".txt"
        out = Path.cwd() / settings.demo_dir / f"preview-{edition.date.isoformat()}{suffix}"
    if out is None:
        for_screen(sys.stdout).write(body)  # a feed's title can carry escapes
        return
    write_atomic(out, body)
    _err().print(f"wrote {out} ({len(body.encode('utf-8')):,} bytes)")
    if open_it:
        webbrowser.open(out.resolve().as_uri())


@app.command()
def check(
    source: SourceArgument,
    fmt: FormatOption = OutputFormat.table,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero on warnings too.")
    ] = False,
    allow_large: AllowLarge = False,
    config: ConfigOption = None,
) -> None:
    """Validate an edition and report its size, words, reading time, reads and warnings."""
    from digest.render.check import CheckReport, edition_warnings
    from digest.render.renderer import render_edition
    from digest.settings import load_settings

    settings = load_settings(config)
    assembled = _assembled(settings, source)
    edition = assembled.require()
    for problem in assembled.problems:
        _err().print(f"warning: {problem}", markup=False)
    limit = settings.render.max_html_bytes
    rendered = render_edition(_renderer(settings), edition, allow_large=allow_large)
    report = CheckReport(
        edition,
        rendered,
        limit,
        tuple(edition_warnings(assembled.file_edition(), rendered, limit)),
        assembled.origins,
    )
    if not write_report(report.as_dict(), fmt):
        _print_report(report)
    if strict and report.warnings:
        raise typer.Exit(1)


def _assembled(settings: Settings, source: str) -> Assembled:
    """The edition SOURCE names as it would go out now: the one every command shows."""
    from datetime import UTC, datetime

    from digest.assemble.day import assemble_source
    from digest.database import open_database

    with open_database(settings.database_url) as db:
        return assemble_source(db, settings, source, datetime.now(UTC))


def _print_report(report: CheckReport) -> None:
    from rich.table import Table
    from rich.text import Text

    figures = report.as_dict()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("file", "date", "title", "subject", "sections", "reads", "words"):
        table.add_row(key, str(figures[key]))
    if report.origins:
        table.add_row("reads from", report.origin_summary())
    table.add_row("reading time", f"approx. {report.rendered.minutes} min")
    share = report.rendered.html_bytes / report.limit
    table.add_row(
        "HTML size", f"{report.rendered.html_bytes:,} bytes ({share:.0%} of {report.limit:,})"
    )
    table.add_row("text size", f"{report.rendered.text_bytes:,} bytes")
    console = _out()
    console.print(table)
    for number, (read, origin) in enumerate(report.reads_with_origin(), start=1):
        console.print(f"  read {number} ({origin}): {read.title} <{read.url}>", markup=False)
    if report.warnings:
        console.print(
            Text(f"{plural(len(report.warnings), 'warning', 'warnings')}:", style="yellow")
        )
        for warning in report.warnings:
            console.print(Text.assemble("  ", ("warning:", "yellow"), " ", shown(warning)))
    else:
        console.print(Text.assemble(("OK", "green"), ": no errors, no warnings"))


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the demo output (default: demo_dir).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Render the shipped example edition and say where to open it."""
    from rich.text import Text

    from digest.cli.demo import send_demo
    from digest.edition.files import EXAMPLE_EDITION, write_atomic
    from digest.edition.parse import load_edition
    from digest.render.renderer import personalise, preview_values, render_edition
    from digest.settings import load_settings

    settings = load_settings(config)
    folder = out or settings.demo_dir
    edition = load_edition(EXAMPLE_EDITION)
    rendered = render_edition(_renderer(settings), edition)
    html, text = personalise(rendered, preview_values(settings.publication))
    html_path = folder / "edition.html"
    text_path = folder / "edition.txt"
    write_atomic(html_path, html)
    write_atomic(text_path, text)
    console = _out()
    console.print(Text.assemble("Rendered the example edition: ", (edition.title, "bold")))
    console.print(
        f"  {plural(len(edition.sections), 'section', 'sections')}, "
        f"{plural(len(edition.reads), 'recommended read', 'recommended reads')}, "
        f"{plural(rendered.words, 'word', 'words')}, read time approx. {rendered.minutes} min"
    )
    console.print(f"  HTML email ({rendered.html_bytes:,} bytes): {html_path.resolve().as_uri()}")
    console.print(f"  plain-text twin: {text_path.resolve()}")
    console.print(f"The edition file it came from: {EXAMPLE_EDITION}")
    demo = send_demo(settings, folder)
    console.print(
        f"Sent it to {plural(demo.sent, 'example subscriber', 'example subscribers')} in {folder / 'demo.db'}: "
        f"the messages are in the Maildir outbox {demo.outbox.resolve()}/new/",
        markup=False,
    )
    reply = demo.reply
    console.print(
        f"Filed a reader's {reply['kind']} from {reply['subscriber']} against the edition of "
        f'{reply["edition"]}: "{reply["text"].splitlines()[0]}…"\n'
        f"  see it with: DIGEST_DATABASE_URL={demo.database_url} digest feedback list",
        markup=False,
    )


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on [web.host].")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port [web.port].")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the public pages: sign-up, confirm and unsubscribe links."""
    from digest.settings import load_settings
    from digest.web.server import serve as run_server

    settings = load_settings(config)
    host = host or settings.web.host
    port = port or settings.web.port
    _err().print(
        f"serving {settings.publication.name} on http://{host}:{port}/subscribe "
        f"(links in emails point at {settings.web.public_url})",
        markup=False,
    )
    run_server(settings, host, port)


@app.command("run")
def run_service(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface for the web pages [web.host].")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port [web.port].")
    ] = None,
    no_web: Annotated[bool, typer.Option("--no-web", help="Run the scheduler only.")] = False,
    config: ConfigOption = None,
) -> None:
    """The long-running service: the scheduler and, in the same process, `digest serve`."""
    import logging
    import signal
    import threading

    from digest.cli.options import VisibleFormatter
    from digest.schedule.service import run_scheduler
    from digest.settings import load_settings

    settings = load_settings(config)
    handler = logging.StreamHandler()
    handler.setFormatter(VisibleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(number: int, _frame: object) -> None:
        logging.getLogger("digest.run").info("signal %d: stopping", number)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    web = None
    if not no_web:
        from digest.web.server import background_server

        web = background_server(settings, host or settings.web.host, port or settings.web.port)
    try:
        run_scheduler(settings, str(config) if config else None, stop)
    finally:
        if web is not None:
            web.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning our errors into a clear message and exit 1."""
    try:
        args = sys.argv[1:] if argv is None else argv
        command(app, args).main(args=args, prog_name="digest")
    except EditionError as exc:
        err = _err()
        err.print(_error(f"the edition has {plural(len(exc.problems), 'problem', 'problems')}:"))
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        sys.exit(1)
    except (DigestError, AudienceError) as exc:
        _err().print(_error(str(exc)))
        sys.exit(1)


def _error(message: str) -> Text:
    from rich.text import Text

    return Text.assemble(("error:", "bold red"), " ", shown(message))
