"""The choice of an edition's reads: pure, so it is tested without a database or network."""

from __future__ import annotations

from collections.abc import Iterable

from digest.edition.model import Read
from digest.edition.urls import normalise_url


def choose(candidates: Iterable[Read], recently: set[str], limit: int) -> list[Read]:
    """The first ``limit`` candidates whose links weren't recommended recently, each once."""
    return [read for read, _ in choose_with_origin(((r, "") for r in candidates), recently, limit)]


def choose_with_origin(
    candidates: Iterable[tuple[Read, str]], recently: set[str], limit: int
) -> list[tuple[Read, str]]:
    """As :func:`choose`, keeping beside each read where it came from."""
    seen = set(recently)
    chosen: list[tuple[Read, str]] = []
    for read, origin in candidates:
        key = normalise_url(read.url)
        if key not in seen and len(chosen) < limit:
            seen.add(key)
            chosen.append((read, origin))
    return chosen
