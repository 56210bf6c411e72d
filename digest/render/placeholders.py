"""Per-recipient ``[[placeholders]]``: left open by rendering, filled when sending.

Rendering (MJML, CSS inlining) costs milliseconds, so it happens once per edition.
What differs per recipient is marked ``[[name]]`` in the output and filled here by
joining precomputed pieces, which costs microseconds.

Only the templates may produce placeholders. A template prints ``recipient.NAME``,
which during rendering is a token no content can guess (it holds a random
nonce); once the output is final (after Markdown, MJML and CSS inlining, so no
escape or entity is left to resolve) every ``[[`` in it is broken by an
invisible word joiner and only then are the tokens turned into ``[[NAME]]``.
So whatever an edition, a feed or a queued read spells, and however it spells
it (``\\[\\[``, ``&#91;``, a URL), nobody can make the sender fill a reader's
address or unsubscribe link into it: see :class:`TemplateFields`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from markupsafe import escape

#: Every value the sending step fills per recipient.
RECIPIENT_FIELDS = ("unsubscribe_url", "recipient_email", "confirm_url")
#: The values an edition's sender fills (an edition has no confirmation link).
EDITION_FIELDS = ("unsubscribe_url", "recipient_email")

PLACEHOLDER_RE = re.compile(r"\[\[([a-z_]+)\]\]")
_WORD_JOINER = "\u2060"
_DOUBLE_BRACKET = re.compile(r"\[(?=\[)")
_BRACKET_RUN = re.compile(r"[\[\]]{2,}")


def marker(name: str) -> str:
    """The text a template emits for a per-recipient value."""
    if name not in RECIPIENT_FIELDS:
        raise KeyError(f"unknown placeholder {name!r}; known: {', '.join(RECIPIENT_FIELDS)}")
    return f"[[{name}]]"


def neutralise(text: str) -> str:
    """Make text unable to form a placeholder: a word joiner after every ``[`` before a ``[``.

    Readers see the brackets as written; ``[[[`` is broken twice, not once.
    """
    return _DOUBLE_BRACKET.sub("[" + _WORD_JOINER, text)


def guard_url(url: str) -> str:
    """A content URL that cannot form a placeholder and still works as a link.

    Runs of brackets are percent-encoded, as browsers send them anyway; a lone
    bracket (an IPv6 host such as ``[::1]``) is left alone.
    """
    return _BRACKET_RUN.sub(lambda run: run.group().replace("[", "%5B").replace("]", "%5D"), url)


@dataclass(frozen=True)
class TemplateFields:
    """What templates print for per-recipient values during one render, and how it ends.

    Content cannot produce a token: it holds a nonce drawn for this render. The
    tokens become ``[[name]]`` only in :meth:`finish`, after the output is final
    and every ``[[`` that content put there has been neutralised.
    """

    names: tuple[str, ...]
    nonce: str

    @classmethod
    def draw(cls, names: tuple[str, ...] = RECIPIENT_FIELDS) -> TemplateFields:
        """Tokens for ``names`` only: a template asking for another field is an error."""
        for name in names:
            marker(name)  # refuse unknown names
        return cls(names, secrets.token_hex(16))

    def token(self, name: str) -> str:
        return f"digest-field-{self.nonce}-{name}"

    def tokens(self) -> dict[str, str]:
        """The ``recipient`` mapping handed to templates."""
        return {name: self.token(name) for name in self.names}

    def finish(self, output: str) -> str:
        """Final output with content's ``[[`` neutralised and the template's fields open."""
        guarded = neutralise(output)
        for name in self.names:
            guarded = guarded.replace(self.token(name), marker(name))
        return guarded


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
