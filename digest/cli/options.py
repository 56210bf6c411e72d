"""What every ``digest`` command shares: the --config and --format options and the consoles.

Every command that prints data takes the same ``--format table|json|csv``:
``table`` for people, ``json`` and ``csv`` for scripts and spreadsheets. A list
(subscribers, feedback, reads, jobs) is one CSV row per item; a report (``check``,
``status``) is one ``field,value`` row per figure, nested keys joined by dots.

Much of what is printed came from outside: names typed into the sign-up form,
readers' mail, SMTP replies, feed titles. None of it reaches the terminal as
anything but text: ``visible`` is the one place that decides what a terminal
would act on rather than show, and every console, table cell, error message and
CSV or JSON written to a terminal goes through it.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

if TYPE_CHECKING:  # Rich is imported when something is printed: `digest --help` needs none of it
    from _typeshed import SupportsWrite
    from rich.console import Console
    from rich.text import Text

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="DIGEST_CONFIG",
        help="Settings file (default: ./digest.toml if present).",
        show_default=False,
    ),
]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", help="table for people; json or csv for scripts."),
]


#: What a terminal acts on instead of showing: the C0 controls but tab and newline (and
#: a carriage return only where a newline follows it), DEL and the C1 controls (ESC and CSI
#: start the sequences that clear the screen, retitle the window or make an OSC 8
#: link), the bidirectional controls (U+202E shows "gnp.exe" as "exe.png") and the
#: line and paragraph separators.
_HIDDEN = re.compile(
    r"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def _named(found: re.Match[str]) -> str:
    code = ord(found.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on written out: ESC as ``\\x1b``,
    U+202E as ``\\u202e``. Tabs and line ends stay, so mail still reads as mail."""
    return _HIDDEN.sub(_named, text)


def shown(value: object) -> Text:
    """A value from outside as something to print or put in a table cell: Rich ``Text``,
    so ``[/]`` or ``[link=…]`` is never markup, with its hidden characters made visible."""
    from rich.text import Text

    if value is None:
        return Text("")
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return Text(visible(text))


def console(stderr: bool = False) -> Console:
    """No highlighting and no wrapping: messages stay greppable and paths unbroken."""
    from digest.cli.screen import VisibleConsole

    return VisibleConsole(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


class _Shown:
    """A terminal written to as a file: what it would act on made visible as it goes."""

    def __init__(self, handle: SupportsWrite[str]) -> None:
        self._handle = handle

    def write(self, text: str) -> int:
        self._handle.write(visible(text))
        return len(text)


class VisibleFormatter(logging.Formatter):
    """Log lines of ``digest run`` with what a terminal would act on made visible:
    they quote SMTP replies, feed problems and mail errors."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


def for_screen(handle: TextIO) -> SupportsWrite[str]:
    """``handle``, or when it is a terminal, ``handle`` showing hidden characters.

    CSV written to a file or a pipe is the data exactly; on a terminal, an ESC in a
    subscriber's name would be run, so there it is written as ``\\x1b`` instead.
    """
    return _Shown(handle) if handle.isatty() else handle


def write_json(data: object, handle: SupportsWrite[str] | None = None) -> None:
    """Indented JSON with a final newline; non-ASCII text kept as it is.

    The characters ``visible`` names are written as JSON escapes (``\\u202e``): the
    same data to any JSON reader, and nothing a terminal acts on.
    """
    text = json.dumps(data, ensure_ascii=False, indent=2)
    (handle or sys.stdout).write(_HIDDEN.sub(_json_escape, text) + "\n")


def _json_escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group(0)):04x}"


def write_csv(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    handle: SupportsWrite[str] | None = None,
    *,
    verbatim: bool = False,
) -> int:
    """A header, then one row per item (stdout by default, as ``for_screen`` has it).

    Cells a spreadsheet would run as a formula are made text, unless ``verbatim``:
    values a script matches exactly (email addresses) are written as stored.
    """
    from subscribers.csv_export import safe_cell  # imports SQLAlchemy: only when writing CSV

    writer = csv.writer(handle or for_screen(sys.stdout))
    writer.writerow(columns)
    for row in rows:
        cells = ["" if row[k] is None else str(row[k]) for k in columns]
        writer.writerow(cells if verbatim else [safe_cell(cell) for cell in cells])
    return len(rows)


def write_rows(
    rows: Sequence[Mapping[str, object]],
    fmt: OutputFormat,
    columns: Sequence[str],
    *,
    verbatim: bool = False,
) -> bool:
    """A list as JSON or CSV; False for ``table``, which the command draws itself."""
    if fmt is OutputFormat.json:
        write_json(list(rows))
    elif fmt is OutputFormat.csv:
        write_csv(rows, columns, verbatim=verbatim)
    return fmt is not OutputFormat.table


def flatten(data: Mapping[str, object], prefix: str = "") -> list[dict[str, object]]:
    """``field``/``value`` rows of a nested report: ``counts.sent``, ``failures.0.email``."""
    rows: list[dict[str, object]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, f"{name}.")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    rows += flatten(item, f"{name}.{index}.")
                else:
                    rows.append({"field": f"{name}.{index}", "value": item})
        else:
            rows.append({"field": name, "value": value})
    return rows


def write_report(data: Mapping[str, object], fmt: OutputFormat) -> bool:
    """A report as JSON, or as ``field,value`` CSV; False for ``table``."""
    if fmt is OutputFormat.json:
        write_json(data)
    elif fmt is OutputFormat.csv:
        write_csv(flatten(data), ("field", "value"))
    return fmt is not OutputFormat.table
