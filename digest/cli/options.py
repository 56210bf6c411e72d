"""What every ``digest`` command shares: the --config and --format options and the consoles.

Every command that prints data takes the same ``--format table|json|csv``:
``table`` for people, ``json`` and ``csv`` for scripts and spreadsheets. A list
(subscribers, feedback, reads, jobs) is one CSV row per item; a report (``check``,
``status``) is one ``field,value`` row per figure, nested keys joined by dots.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from subscribers.csv_export import safe_cell

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


def console(stderr: bool = False) -> Console:
    """No highlighting and no wrapping: messages stay greppable and paths unbroken."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def write_json(data: object, handle: IO[str] | None = None) -> None:
    """Indented JSON with a final newline; non-ASCII text kept as it is."""
    (handle or sys.stdout).write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_csv(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    handle: IO[str] | None = None,
    *,
    verbatim: bool = False,
) -> int:
    """A header, then one row per item.

    Cells a spreadsheet would run as a formula are made text, unless ``verbatim``:
    values a script matches exactly (email addresses) are written as stored.
    """
    writer = csv.writer(handle or sys.stdout)
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
