"""What every ``digest`` command shares: the --config option and the consoles."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="DIGEST_CONFIG",
        help="Settings file (default: ./digest.toml if present).",
        show_default=False,
    ),
]


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def console(stderr: bool = False) -> Console:
    """No highlighting and no wrapping: messages stay greppable and paths unbroken."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)
