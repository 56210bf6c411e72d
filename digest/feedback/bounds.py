"""How much work parsing one message may take, and the cuts that keep it there. Pure.

One hostile message must not hold up the rest. The standard library's header
code is quadratic in a header's length (300,000 encoded words in a Subject ran
for minutes; so does a Content-Type of many parameters, which the MIME parser
reads as it goes), so header values are cut before anything reads them; MIME
parts (a delivery report's recipient blocks among them) are counted; and a time
budget is checked between the stages of parsing. Nothing is interrupted: with
the cuts, no stage is worse than the message's size (bounded too) times a small
factor (a 30 MB report of 250,000 blocks: 10 s, outside any transaction).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.message import Message

from digest.errors import ParseLimitError
from digest.words import plural

#: Content-Type fields anywhere in a message (the parser reads their parameters as it goes).
_CONTENT_TYPE_FIELD = re.compile(rb"^content-type:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.I | re.M)


@dataclass(frozen=True)
class Limits:
    """How much work parsing one message may take."""

    message_bytes: int = 40 * 1024 * 1024  # larger is stored, not parsed
    header_chars: int = 16_384  # of one header value; the rest is cut before it is read
    parts: int = 1_000  # MIME parts, a delivery report's recipient blocks among them
    report_recipients: int = 100  # ours go to one recipient each; past this, not read
    html_chars: int = 1_000_000  # of the HTML turned into text (the raw keeps it all)
    seconds: float = 30.0  # checked between stages, and between parts


DEFAULT_LIMITS = Limits()


class Budget:
    """The time one message may take, checked between stages (nothing is interrupted)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def check(self, stage: str) -> None:
        if time.monotonic() >= self.ends:  # a budget of 0 is always spent
            raise ParseLimitError(f"not parsed: over its {self.seconds:g} s budget ({stage})")


def cut_content_types(raw: bytes, limit: int, problems: list[str]) -> bytes:
    """``raw`` with every Content-Type field cut to ``limit`` characters: the parser reads
    a multipart's parameters as it goes, in time quadratic in their length."""
    long = [f.span() for f in _CONTENT_TYPE_FIELD.finditer(raw) if f.end() - f.start() > limit]
    if not long:
        return raw  # no copy: a message can be tens of megabytes
    pieces, at = [], 0
    for start, end in long:
        pieces += [raw[at : start + limit]]
        at = end
    problems.append(
        f"{plural(len(long), 'Content-Type header', 'Content-Type headers')} cut to "
        f"{limit:,} characters"
    )
    return b"".join([*pieces, raw[at:]])


def cut_headers(message: Message, limits: Limits) -> list[str]:
    """Every part's header values cut to ``limits.header_chars``, before anything reads
    them; more than ``limits.parts`` parts (report blocks among them) is too many."""
    cut: set[str] = set()
    for count, part in enumerate(message.walk(), start=1):
        if count > limits.parts:
            raise ParseLimitError(
                f"not parsed: more than {limits.parts:,} MIME parts and report blocks"
            )
        long = {k.lower() for k, v in part.raw_items() if len(v) > limits.header_chars}
        for name in long:
            values = [v for k, v in part.raw_items() if k.lower() == name]
            del part[name]
            for value in values:
                part[name] = value[: limits.header_chars]
        cut |= long
    if not cut:
        return []
    headers = plural(len(cut), "header", "headers")
    return [f"{headers} cut to {limits.header_chars:,} characters: {', '.join(sorted(cut))}"]
