"""Per-recipient ``[[placeholders]]``: left open by rendering, filled when sending.

Rendering (MJML, CSS inlining) costs milliseconds, so it happens once per edition.
What differs per recipient is marked ``[[name]]`` in the output and filled here by
joining precomputed pieces, which costs microseconds.

Only the templates may produce placeholders: text an editor writes has any
``[[`` broken by an invisible word joiner, so nobody can make the sender fill a
recipient's address or unsubscribe link into an edition's prose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from markupsafe import escape

#: Every value the sending step fills per recipient.
RECIPIENT_FIELDS = ("unsubscribe_url", "recipient_email", "confirm_url")

PLACEHOLDER_RE = re.compile(r"\[\[([a-z_]+)\]\]")
_WORD_JOINER = "\u2060"


def marker(name: str) -> str:
    """The text a template emits for a per-recipient value."""
    if name not in RECIPIENT_FIELDS:
        raise KeyError(f"unknown placeholder {name!r}; known: {', '.join(RECIPIENT_FIELDS)}")
    return f"[[{name}]]"


def markers() -> dict[str, str]:
    """All markers by name, as handed to templates."""
    return {name: marker(name) for name in RECIPIENT_FIELDS}


def neutralise(text: str) -> str:
    """Make editor-written text unable to form a placeholder."""
    return text.replace("[[", "[" + _WORD_JOINER + "[")


def escape_html(value: str) -> str:
    return str(escape(value))


def keep(value: str) -> str:
    return value


@dataclass(frozen=True)
class Personalisable:
    """A rendered body split at its placeholders, ready to fill many times."""

    pieces: tuple[str, ...]  # literal text, alternating with field names
    fields: tuple[str, ...]

    @classmethod
    def compile(cls, text: str) -> Personalisable:
        parts = PLACEHOLDER_RE.split(text)
        unknown = sorted({name for name in parts[1::2] if name not in RECIPIENT_FIELDS})
        if unknown:
            raise KeyError(f"unknown placeholders in rendered output: {', '.join(unknown)}")
        return cls(pieces=tuple(parts[0::2]), fields=tuple(parts[1::2]))

    def fill(self, values: Mapping[str, str], encode: Callable[[str], str] = keep) -> str:
        """The text for one recipient; ``encode`` escapes values (HTML needs it)."""
        filled = [encode(values[name]) for name in self.fields]
        out = [self.pieces[0]]
        for value, piece in zip(filled, self.pieces[1:], strict=True):
            out.append(value)
            out.append(piece)
        return "".join(out)
