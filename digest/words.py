"""Counts in English: ``1 message``, ``2 messages``; every count the CLI prints goes through it."""

from __future__ import annotations


def plural(count: int, one: str, many: str) -> str:
    """``count`` and the noun that agrees with it, thousands separated: ``1,204 rows``."""
    return f"{count:,} {one if count == 1 else many}"


def them(count: int) -> str:
    """The pronoun for ``count`` things: ``sends it``, ``sends them``."""
    return "it" if count == 1 else "them"
