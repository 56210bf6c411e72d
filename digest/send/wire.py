"""A message as SMTP's DATA carries it, built from parts dot-stuffed once per edition.

SMTP ends a message with a line holding a single ``.``, so every line of the message
that starts with ``.`` goes over with the dot doubled (RFC 5321 section 4.5.2).
Doing that to each whole 40 KB message took as long as composing it (``bytes.replace``
is slow when it has matches to copy around). A message is made of parts: most of them
the same for every recipient, so each part is stuffed inside once (a ``.`` after a
line break within it doubled) and, per message, only where two parts meet is looked
at: a part starting with ``.`` right after a part that ended a line gets its dot
doubled there. The result is exactly :func:`digest.send.transport.dot_stuffed` of
the joined message (tests/digest/test_wire.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterable


class Part:
    """A piece of a message, with its inside dot-stuffed once."""

    __slots__ = ("raw", "stuffed")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.stuffed = raw.replace(b"\n.", b"\n..") if b"\n." in raw else raw

    def removesuffix(self, suffix: bytes) -> Part:
        """The part without ``suffix`` (which must contain no line-starting dot)."""
        if not self.raw.endswith(suffix):
            return self
        shorter = Part.__new__(Part)
        shorter.raw = self.raw[: -len(suffix)]
        shorter.stuffed = self.stuffed[: -len(suffix)]
        return shorter


def raw_message(parts: Iterable[Part]) -> bytes:
    """The parts joined: the message itself."""
    return b"".join([part.raw for part in parts])


def data_payload(parts: Iterable[Part]) -> bytes:
    """The parts joined as DATA carries them: stuffed, ending in CRLF and then ``.`` CRLF."""
    out: list[bytes] = []
    tail = b"\n"  # the last two bytes so far; the message's first byte starts a line
    for part in parts:
        raw = part.raw
        if not raw:
            continue
        if tail[-1:] == b"\n" and raw[:1] == b".":
            out.append(b".")
        out.append(part.stuffed)
        tail = raw[-2:] if len(raw) >= 2 else (tail + raw)[-2:]
    if not out or tail != b"\r\n":
        out.append(b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)
