"""What ``digest feedback import`` leaves out: files that are no mail, and our own mail.

A folder handed to the import can hold anything: an empty file, a picture, a
note. Only what starts with a header block that names a message (``From:``,
``Date:``, ``Message-ID:`` …) is filed; the rest is skipped with the reason.
Copies of what this publication sent (a maildir outbox, a Sent folder) are no
readers' mail either: a message whose Message-ID is one of our deliveries', or
that comes from the publication's sender address with our List-Id, is skipped
and counted. Both are decided from the header block alone, a batch at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select

from digest.feedback.parse import headline, list_id_of, message_id_of
from digest.feedback.raw import Incoming
from digest.ledger import Delivery
from digest.send.mailboxes import list_id
from digest.settings import Settings
from subscribers.db import Database

#: Bytes looked at for a header block (and for NULs: binary data).
_HEAD_BYTES = 65_536
_HEADER_END = re.compile(rb"\r?\n\r?\n")
#: A header field's name, then its colon.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
#: Fields one of which every message has (RFC 5322 asks for From and Date).
_MESSAGE_FIELDS = frozenset({b"from", b"sender", b"date", b"message-id", b"received"})
_ANGLED = re.compile(r"<([^<>]+)>")
#: Messages screened per database query.
_BATCH = 200
T = TypeVar("T")


def not_a_message(raw: bytes) -> str | None:
    """Why ``raw`` is not a mail message, or None if it starts like one."""
    if not raw.strip():
        return "empty file" if not raw else "only blank lines"
    head = raw[:_HEAD_BYTES]
    if b"\0" in head:
        return "binary data, not a mail message"
    end = _HEADER_END.search(head)
    lines = (head[: end.start()] if end else head).splitlines()
    names: set[bytes] = set()
    for line in lines:
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded field's next line
        found = _FIELD.match(line)
        if found is None:
            break
        names.add(found.group(1).lower())
    if not names:
        return "not a mail message: it does not begin with header fields (From:, Date: …)"
    if not names & _MESSAGE_FIELDS:
        return "not a mail message: its header block has no From, Date or Message-ID"
    return None


#: Skipped files kept with their reasons for the report (all are counted).
LISTED = 20


@dataclass
class Screened:
    """What the screen left out: how many were no mail (the first ``LISTED`` with
    origin and reason) and how many were our own."""

    not_mail: int = 0
    reasons: list[tuple[str, str]] = field(default_factory=list)
    own: int = 0


class Screen:
    """Passes on readers' mail only; ``screened`` says what it left out."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.sender = str(settings.publication.sender_email).lower()
        self.list_id = _list_key(list_id(settings))
        self.screened = Screened()

    def sift(self, messages: Iterable[Incoming]) -> Iterator[Incoming]:
        batch: list[Incoming] = []
        for incoming in messages:
            reason = not_a_message(incoming.raw)
            if reason is not None:
                self.screened.not_mail += 1
                if len(self.screened.reasons) < LISTED:
                    self.screened.reasons.append((incoming.origin, reason))
                continue
            batch.append(incoming)
            if len(batch) >= _BATCH:
                yield from self._not_ours(batch)
                batch = []
        yield from self._not_ours(batch)

    def _not_ours(self, batch: list[Incoming]) -> list[Incoming]:
        if not batch:
            return []
        ids = [_safe(message_id_of, incoming.raw) for incoming in batch]
        known = {found for found in ids if found}
        if known:
            with self.db.transaction() as session:
                sent = set(
                    session.scalars(
                        select(Delivery.message_id).where(Delivery.message_id.in_(known))
                    )
                )
        else:
            sent = set()
        theirs = []
        for number, incoming in enumerate(batch):
            if ids[number] in sent or self._from_us(incoming.raw):
                self.screened.own += 1
            else:
                theirs.append(incoming)
        return theirs

    def _from_us(self, raw: bytes) -> bool:
        """From the publication's sender address, with our List-Id."""
        head = _safe(headline, raw)
        if head is None or head.from_email != self.sender:
            return False
        found = _safe(list_id_of, raw)
        return found is not None and _list_key(found) == self.list_id


def _list_key(value: str) -> str:
    """The identifying part of a List-Id (RFC 2919: the one in angle brackets)."""
    found = _ANGLED.search(value)
    return (found.group(1) if found else value).strip().lower()


def _safe(read: Callable[[bytes], T], raw: bytes) -> T | None:
    try:
        return read(raw)
    except Exception:  # a header we cannot read only cannot tell it is ours
        return None
