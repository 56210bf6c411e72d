"""A raw message into the values filing needs. Pure: bytes in, ``Parsed`` out.

Real mailboxes hold every kind of damage: raw 8-bit bytes in headers, unknown
charsets, boundaries that never close, ``Date:`` headers from the future. The
parser is the lenient one of the standard library (``compat32``), and every
decoding step falls back instead of failing; what fell short is listed in
``problems``. Anything that still raises is caught by the caller, which keeps
the raw message and files it as ``other`` with the reason.

The work per message is bounded (``bounds.Limits``): one hostile message must
not hold up the rest. What is cut (a header value, the HTML read for its text)
is listed in ``problems``; past a limit that cutting can't honour (too many
parts, a report naming too many recipients, the time budget) it raises
``ParseLimitError``, and the caller files the message as ``other`` with that reason.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser

from digest.errors import ParseLimitError
from digest.feedback.bounds import (
    DEFAULT_LIMITS,
    Budget,
    Limits,
    cut_content_types,
    cut_headers,
)
from digest.feedback.reports import Report, read_report
from digest.feedback.text import html_to_text, strip_reply, tidy

_ANGLE_ID = re.compile(r"<[^<>\s]{1,400}>")
_ID_CHAR = r"[\x21-\x3b\x3d\x3f-\x7e]"  # printable ASCII but < > and space
_WELL_FORMED_ID = re.compile(rf"<{_ID_CHAR}{{1,200}}@{_ID_CHAR}{{1,200}}>")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
#: Message-IDs of our own deliveries wherever they appear (returned headers, copies).
OUR_ID = re.compile(rb"<\d{8}\.\d{1,18}\.[0-9a-f]{8,32}@[A-Za-z0-9.-]{1,253}>")
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|out of (the )?office|"
    r"abwesenheitsnotiz|abwesend|réponse automatique|respuesta automática|"
    r"risposta automatica|automatisch antwoord|autosvar|on vacation|vacation reply)",
    re.IGNORECASE,
)
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to")
#: The headers that make a message what it is; trace headers (Received:, Delivered-To:,
#: Authentication-Results: …) differ between copies of one message and are not among them.
_CONTENT_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "auto-submitted",
        "precedence",
        "x-autoreply",
        "x-autorespond",
        "x-failed-recipients",
    }
)


@dataclass(frozen=True)
class Parsed:
    """What one message says, decoded."""

    message_id: str | None
    thread_ids: tuple[str, ...]  # In-Reply-To, then References newest first
    from_email: str | None
    from_name: str | None
    recipients: tuple[str, ...]  # every address it was sent to, lower-case
    subject: str
    date: datetime | None
    received: datetime | None  # the newest Received: header's time: when it arrived
    text: str  # the reader's own words
    full_text: str
    auto_reply: bool
    report: Report
    quoted_ids: tuple[str, ...]  # our Message-IDs inside the message (returned headers)
    problems: tuple[str, ...] = field(default=())


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID from the header block only: cheap enough for deduplication."""
    return normalise_id(_plain(_head(raw).get("message-id")))


def list_id_of(raw: bytes) -> str:
    """The List-Id, from the header block only ("" if there is none)."""
    return header(_head(raw), "list-id")


def _head(raw: bytes) -> Message:
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw[:65536]
    return BytesHeaderParser().parsebytes(head + b"\n\n")


def content_key(raw: bytes) -> str:
    """A hash of what the message says: its body and content headers, not its trace.

    Two copies of one message (one delivered again with one more ``Received:``
    header) have the same key; two messages that only share a Message-ID don't.
    """
    message = BytesParser().parsebytes(raw, headersonly=True)  # the body stays as it came
    digest = hashlib.sha256()
    for name, value in message.raw_items():
        if name.lower() in _CONTENT_HEADERS:
            digest.update(
                f"{name.lower()}:{' '.join(value.split())}\n".encode("utf-8", "surrogateescape")
            )
    body = message.get_payload()
    if isinstance(body, str):
        digest.update(b"\n" + body.encode("utf-8", "surrogateescape").replace(b"\r\n", b"\n"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Headline:
    """From, Subject and Date alone: what is listed of a message that was not parsed."""

    from_email: str | None
    from_name: str | None
    subject: str
    date: datetime | None


def headline(raw: bytes) -> Headline:
    """The few headers a list shows, read from the header block alone (cheap, bounded)."""
    headers = _head(raw)
    name, address = email.utils.parseaddr(header(headers, "from"))
    return Headline(
        from_email=address.lower() if "@" in address else None,
        from_name=name or None,
        subject=header(headers, "subject"),
        date=_date(header(headers, "date")),
    )


def normalise_id(value: str | None) -> str | None:
    """A well-formed ``<left@right>`` in printable ASCII, or None: nothing else dedupes."""
    if not value:
        return None
    found = _WELL_FORMED_ID.search(value)
    return found.group(0) if found else None


def parse(
    raw: bytes,
    languages: tuple[str, ...] = ("en",),
    envelope_to: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> Parsed:
    """Everything filing needs from one message; ``envelope_to`` are SMTP recipients.

    Raises ``ParseLimitError`` past ``limits``.
    """
    if len(raw) > limits.message_bytes:
        raise ParseLimitError(
            f"not parsed: {len(raw) / 2**20:.1f} MB, over the limit of "
            f"{limits.message_bytes / 2**20:g} MB (feedback.max_message_mb)"
        )
    budget = Budget(limits.seconds)
    problems: list[str] = []
    message = email.message_from_bytes(cut_content_types(raw, limits.header_chars, problems))
    budget.check("after reading its MIME structure")
    problems += [type(defect).__name__ for defect in message.defects]
    problems += cut_headers(message, limits)
    text, html, body_problems = _body(message, budget)
    problems += body_problems
    if html is not None and len(html) > limits.html_chars:
        problems.append(f"only the first {limits.html_chars:,} characters of its HTML read")
        html = html[: limits.html_chars]
    budget.check("before turning its HTML into text")
    full_text = text if text else (html_to_text(html) if html else "")
    budget.check("after reading its text")
    name, address = email.utils.parseaddr(header(message, "from"))
    recipients = tuple(
        dict.fromkeys(
            addr.lower()
            for _, addr in email.utils.getaddresses(
                [header(message, field) for field in _RECIPIENT_HEADERS] + list(envelope_to)
            )
            if "@" in addr
        )
    )
    subject = header(message, "subject")
    own_id = normalise_id(header(message, "message-id"))
    thread = [normalise_id(header(message, "in-reply-to"))]
    thread += [normalise_id(i) for i in reversed(_ANGLE_ID.findall(header(message, "references")))]
    budget.check("before reading it as a report")
    try:
        report = read_report(message, header(message, "from"), subject)
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        report = Report()
        problems.append(f"report unreadable: {exc}")
    named = len(report.permanent) + len(report.temporary)
    if named > limits.report_recipients:
        raise ParseLimitError(
            f"not read as a report: it names {named:,} failed recipients (over "
            f"{limits.report_recipients:,}); each of our messages goes to one"
        )
    budget.check("after reading it as a report")
    quoted = [m.decode("ascii") for m in OUR_ID.findall(raw)]
    return Parsed(
        message_id=own_id,
        thread_ids=tuple(dict.fromkeys(i for i in thread if i)),
        from_email=address.lower() if "@" in address else None,
        from_name=name or None,
        recipients=recipients,
        subject=subject,
        date=_date(header(message, "date")),
        received=_date(header(message, "received").rpartition(";")[2]),
        text=_report_text(full_text) if report.from_mailer else strip_reply(full_text, languages),
        full_text=full_text,
        auto_reply=_is_auto(message, subject),
        report=report,
        quoted_ids=tuple(dict.fromkeys(i for i in quoted if i != own_id)),
        problems=tuple(dict.fromkeys(problems)),
    )


#: Where a bounce's own words end and the returned message begins.
_RETURNED = re.compile(
    r"^(-+ ?(this is a copy of|original message|below this line).*|return-path:.*|"
    r"received: from .*)$",
    re.IGNORECASE | re.MULTILINE,
)


def _report_text(text: str) -> str:
    """A bounce's or report's explanation, without the copy of our message it returns."""
    found = _RETURNED.search(text)
    return tidy(text[: found.start()] if found else text)[:2000]


def header(message: Message, name: str) -> str:
    """A header decoded to text: RFC 2047 words, raw 8-bit bytes, any charset."""
    return _plain(message.get(name))


#: A header value read from a header block alone is cut here too (see ``bounds.cut_headers``).
_HEADER_CHARS = DEFAULT_LIMITS.header_chars


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Header):
        pieces = decode_header(value)
    else:
        text = str(value)[:_HEADER_CHARS]
        if any("\udc80" <= ch <= "\udcff" for ch in text):  # raw 8-bit bytes
            text = _decode(text.encode("ascii", "surrogateescape"), None)[0]
        try:
            pieces = decode_header(text)
        except (ValueError, IndexError):
            return " ".join(text.split())
    out = []
    for piece, charset in pieces:
        out.append(piece if isinstance(piece, str) else _decode(piece, charset)[0])
    return " ".join("".join(out).split())


def _decode(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Bytes to text by the declared charset, else UTF-8, else Windows-1252 (never fails)."""
    if charset and charset.lower() not in ("unknown-8bit", "x-unknown"):
        try:
            return data.decode(charset), None
        except LookupError:
            problem: str | None = f"unknown charset {charset!r}"
        except ValueError:  # bytes not valid in it, or a name codecs refuse (a NUL in it)
            problem = f"bytes not valid in {charset!r}"
    else:
        problem = None
    try:
        return data.decode("utf-8"), problem
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), problem


def _body(message: Message, budget: Budget) -> tuple[str, str | None, list[str]]:
    """Inline text/plain parts (all of them: Apple Mail puts text, image, text) and the
    first text/html part; not attachments, not attached messages."""
    plain: list[str] = []
    html: str | None = None
    problems: list[str] = []
    for part in _parts(message):
        budget.check("while reading its parts")
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html") or _is_attachment(part):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text, problem = _decode(payload, part.get_content_charset())
        if problem:
            problems.append(problem)
        if kind == "text/plain":
            plain.append(text)
        elif html is None:
            html = text
    return tidy("\n\n".join(plain)), html, problems


def _parts(message: Message) -> list[Message]:
    """Leaf parts in order, not descending into attached messages (``message/*``)."""
    found: list[Message] = []
    stack = [message]
    while stack and len(found) < 500:
        part = stack.pop()
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
        elif part.get_content_maintype() != "message":
            found.append(part)
    return found


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment"


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # year 9999 with an offset
        return None


def _is_auto(message: Message, subject: str) -> bool:
    auto = header(message, "auto-submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if header(message, "x-autoreply") or header(message, "x-autorespond"):
        return True
    if header(message, "precedence").lower() in ("auto_reply", "auto-reply", "junk"):
        return True
    return bool(_AUTO_SUBJECT.match(subject))
