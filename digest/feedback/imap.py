"""Fetching the contact mailbox over IMAP (imap-tools), incrementally and safely.

The read position is the highest UID filed, kept per mailbox together with the
folder's UIDVALIDITY; when the server reports a new UIDVALIDITY the old UIDs
mean nothing and the folder is read again from the start (what was filed
before is recognised as a duplicate and not stored twice).

Order of work for each batch: fetch (``BODY.PEEK[]``, so nothing is marked
read), store the raw bytes and commit, then mark the messages on the server
(keyword ``$DigestFiled``, or a move to ``feedback.imap_move_to``), then save
the read position. A fetch killed at any point therefore loses nothing, and
whatever it repeats is a duplicate the store skips. Nothing is ever deleted.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from imap_tools import BaseMailBox, MailBox
from imap_tools.errors import ImapToolsError, MailboxLoginError

from digest.errors import FetchError
from digest.feedback.models import MailboxState
from digest.feedback.store import Filer, FilingReport, Incoming
from digest.settings import FeedbackSettings, redact_url
from digest.words import plural
from subscribers.db import Database

FILED = "$DigestFiled"
FETCH_CHUNK = 25
#: ``UID n`` as a FETCH data item: at the start or after a space or "(", never a part of
#: another item's name (``X-GM-UID``)
_UID = re.compile(rb"(?:^|[\s(])UID\s+(\d+)", re.IGNORECASE)
_ORIGIN_UID = re.compile(r";UID=(\d+)$")


def fetched_messages(data: list[Any]) -> tuple[list[tuple[int, bytes]], int]:
    """The ``(UID, raw message)`` pairs of a ``UID FETCH (UID BODY.PEEK[])`` answer as
    imaplib returns it, and how many messages named no UID.

    RFC 3501 lets a server send the data items in any order. imaplib hands a message
    literal as a tuple ``(text before it, literal)`` and the rest of that response line
    as the next element, so ``UID 5`` is either in the tuple's text
    (``(b'1 (UID 5 BODY[] {n}', raw), b')'``) or in the element after it
    (``(b'1 (BODY[] {n}', raw), b' UID 5)'``). Other lines (unsolicited ``FLAGS``
    updates) carry no literal and are skipped.
    """
    found: list[tuple[int, bytes]] = []
    lost = 0
    waiting: bytes | None = None  # a literal whose UID may follow it
    for item in data:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            if waiting is not None:  # the previous literal's line ended without a UID
                lost += 1
            uid = _uid_in(item[0])
            waiting = None if uid is not None else item[1]
            if uid is not None:
                found.append((uid, item[1]))
        elif waiting is not None:  # the rest of the line after the literal
            uid = _uid_in(item)
            if uid is None:
                lost += 1
            else:
                found.append((uid, waiting))
            waiting = None
    if waiting is not None:
        lost += 1
    return found, lost


def _uid_in(text: object) -> int | None:
    found = _UID.search(text) if isinstance(text, bytes) else None
    return int(found.group(1)) if found else None


def _uids(messages: list[Incoming]) -> list[int]:
    return [int(m.group(1)) for m in (_ORIGIN_UID.search(i.origin) for i in messages) if m]


@dataclass(frozen=True)
class ImapAddress:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> ImapAddress:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:  # the message would quote part of the password
            port, parts = None, urlsplit("")
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise FetchError(
                f"the IMAP URL {redact_url(url)!r} is not usable: write "
                "imaps://user:password@host/FOLDER or imap://… "
                "(percent-encode / ? # @ : in the user name or password)"
            )
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port or (993 if parts.scheme == "imaps" else 143),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
        )

    @property
    def key(self) -> str:
        """Names the folder without the password: the read position's key, and origins."""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


class _StartTlsWhenOffered(BaseMailBox):
    """Plain IMAP that upgrades to TLS whenever the server offers STARTTLS."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        super().__init__()

    def _get_mailbox_client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self._host, self._port, timeout=self._timeout)
        if "STARTTLS" in client.capabilities:
            client.starttls(ssl.create_default_context())
        return client


@dataclass
class FetchReport:
    mailbox: str
    uidvalidity_changed: bool
    fetched: int
    filing: FilingReport
    warnings: list[str]


class Fetcher:
    """Reads one IMAP folder into the feedback store."""

    def __init__(
        self, db: Database, settings: FeedbackSettings, filer: Filer, url: str | None = None
    ) -> None:
        raw_url = url or (settings.imap_url.get_secret_value() if settings.imap_url else None)
        if raw_url is None:
            raise FetchError(
                "no mailbox to fetch from: set feedback.imap_url (imaps://user:password@host/INBOX)"
            )
        self.address = ImapAddress.parse(raw_url)
        self.db = db
        self.filer = filer
        self.move_to = settings.imap_move_to
        self.timeout = settings.timeout_seconds

    def _connect(self) -> Any:
        address = self.address
        box: BaseMailBox
        try:
            if address.scheme == "imaps":
                box = MailBox(
                    address.host,
                    address.port,
                    timeout=self.timeout,
                    ssl_context=ssl.create_default_context(),  # verify the certificate
                )
            else:
                box = _StartTlsWhenOffered(address.host, address.port, self.timeout)
            return box.login(address.user, address.password, initial_folder=address.folder)
        except MailboxLoginError as exc:
            raise FetchError(f"{address.key}: the server refused the login: {exc}") from exc
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as exc:
            raise FetchError(f"{address.key}: cannot read the mailbox: {exc}") from exc

    def fetch(
        self,
        now: Callable[[], datetime],
        progress: Callable[[int, int], None] | None = None,
    ) -> FetchReport:
        """File every message not filed yet; ``progress(done, total)`` after each batch."""
        try:
            with self._connect() as box:
                return self._fetch(box, now, progress)
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as exc:
            raise FetchError(f"{self.address.key}: {exc}") from exc

    def _fetch(
        self, box: Any, now: Callable[[], datetime], progress: Callable[[int, int], None] | None
    ) -> FetchReport:
        folder = self.address.folder
        status = box.folder.status(folder, ["UIDVALIDITY"])
        validity = int(status["UIDVALIDITY"])
        key = self.address.key
        with self.db.transaction() as session:
            state = session.get(MailboxState, key)
            changed = state is not None and state.uidvalidity != validity
            last = state.last_uid if state is not None and not changed else 0
            if state is None:
                session.add(
                    MailboxState(mailbox=key, uidvalidity=validity, last_uid=0, checked_at=now())
                )
            elif changed:
                state.uidvalidity, state.last_uid = validity, 0
        criteria = f"UID {last + 1}:* UNKEYWORD {FILED}"
        # "n:*" always matches the newest message, even below n: filter again here.
        uids = sorted(u for u in (int(x) for x in box.uids(criteria)) if u > last)
        if self.move_to and not box.folder.exists(self.move_to):
            box.folder.create(self.move_to)
        done = 0

        can_move = self._can_move(box)

        def stored(batch: list[Incoming], failed: list[Incoming]) -> None:
            nonlocal done
            filed = [str(u) for u in _uids(batch)]
            try:
                if filed:
                    self._mark(box, filed, can_move)
            except (ImapToolsError, imaplib.IMAP4.error) as exc:
                # Stored already; the read position still moves on, so a server that
                # refuses keywords or the folder never makes us read the same mail again.
                warnings.append(
                    f"could not mark {plural(len(filed), 'filed message', 'filed messages')}: {exc}"
                )
            # Never past a message that could not be stored, nor one the server's answer
            # did not name by UID: the next fetch reads it again.
            # ``unsafe`` keeps the failures of earlier batches too: a later batch that stored
            # cleanly must not carry the position past them.
            unsafe.extend(_uids(failed))
            below = min([*unsafe, *unnamed], default=None)
            safe = [u for u in _uids(batch) if below is None or u < below]
            with self.db.transaction() as session:
                state = session.get(MailboxState, key)
                assert state is not None
                # A list, so a batch that failed whole (nothing safe) leaves it where it is.
                state.last_uid = max([state.last_uid, *safe])
                state.checked_at = now()
            done += len(batch)
            if progress is not None:
                progress(done, len(uids))

        warnings: list[str] = []
        unsafe: list[int] = []  # UIDs of messages that could not be stored, in any batch
        unnamed: list[int] = []  # the lowest UID of each chunk that lost a message
        filing = self.filer.file(self._messages(box, uids, unnamed), on_stored=stored)
        if unnamed:
            warnings.append(
                f"the server's answer named no UID for some messages from UID {min(unnamed)} "
                "on; the read position stays before them and the next fetch asks again"
            )
        return FetchReport(key, changed, len(uids), filing, warnings)

    def _mark(self, box: Any, uids: list[str], can_move: bool) -> None:
        """Filed: moved to ``imap_move_to``, or flagged in place."""
        if self.move_to and can_move:
            box.move(uids, self.move_to)
        elif self.move_to:  # a copy, and the original only flagged: never expunged
            box.copy(uids, self.move_to)
            box.flag(uids, FILED, True)
        else:
            box.flag(uids, FILED, True)

    @staticmethod
    def _can_move(box: Any) -> bool:
        """Whether the server has MOVE; asked after login, when servers list everything.

        Without MOVE, imap-tools would copy, flag ``\\Deleted`` and EXPUNGE the whole
        folder, which would delete what others marked deleted too.
        """
        result, data = box.client.capability()
        if result != "OK" or not data or not isinstance(data[0], bytes):
            return False
        capabilities = tuple(data[0].decode("ascii", "replace").upper().split())
        box.client.capabilities = capabilities
        return "MOVE" in capabilities

    def _messages(self, box: Any, uids: list[int], unnamed: list[int]) -> Iterator[Incoming]:
        """Each fetched message with its UID in its origin; a chunk whose answer held a
        message without a UID adds the lowest UID it did not get back to ``unnamed``."""
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start : start + FETCH_CHUNK]
            result, data = box.client.uid("FETCH", ",".join(map(str, chunk)), "(UID BODY.PEEK[])")
            if result != "OK":
                raise FetchError(f"{self.address.key}: FETCH failed: {data!r}")
            messages, lost = fetched_messages(data)
            if lost:
                returned = {uid for uid, _ in messages}
                unnamed.append(min((u for u in chunk if u not in returned), default=chunk[0]))
            for uid, raw in messages:
                yield Incoming(raw, f"{self.address.key};UID={uid}")
