"""The Rich console every command prints with, kept apart so that importing
``digest.cli.options`` (as every command module does) does not import Rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from digest.cli.options import visible


class VisibleConsole(Console):
    """A console on which a string is only ever text: never markup or emoji codes, and
    with what a terminal would act on made visible (see ``visible``).

    Every string Rich prints, table cells included, goes through ``render_str``;
    styling of our own is given as ``Text`` with a style, never as markup.
    """

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(visible(text), **options)
