"""MIME messages: multipart/alternative (text, then HTML) with safe headers.

Pure: values in, an ``EmailMessage`` out. Every value that reaches a header —
subject, names, List-Id, URLs, in this module and in the per-recipient fast path
of :mod:`digest.send.compose` — passes through :func:`header_text`, and every
address through :func:`mailbox`, so no text from a reader, a CSV file or an
edition can add a header line or replace a body.

That holds whatever the interpreter's patch level: Python's email package
decodes RFC 2047 encoded words (``=?utf-8?b?…?=``) in the values it is given and,
before the CVE-2024-6923 fix (3.11.10, 3.12.5), writes a decoded CR/LF out as a
real line break. So :func:`header_text` decodes encoded words itself, removes
every control character from the result, and repeats until no encoded word is
left; the email package then encodes clean text, never text it would decode.

Address headers are encoded and folded here (:func:`address_header`), not by the
email package: before gh-80222's fix it drops the quotes of a display name it
folds over two lines, so ``"Eve, x@evil.example" <eve@…>`` became two addresses.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digest.errors import UnsafeAddressError

#: C0 (CR, LF, TAB, NUL…), DEL, C1 (NEL U+0085…), and the Unicode line and
#: paragraph separators: everything ``str.splitlines`` or a mail program may
#: take for a line break, and nothing a header can show.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

#: One RFC 2047 encoded word, exactly the shape the email package decodes:
#: ``=?charset?b-or-q?text?=`` with no ``?`` inside charset or text (whitespace
#: inside is decoded too, as the email package does).
_WORD = r"=\?([^?]*)\?([bBqQ])\?([^?]*)\?="
_ENCODED_WORD = re.compile(_WORD)
#: Encoded words next to each other: decoded together, the space between dropped
#: (RFC 2047 section 6.2), so a character split across two words stays whole.
_ENCODED_RUN = re.compile(rf"{_WORD}(?:\s*{_WORD})*")

#: Nested encoding (an encoded word whose text is an encoded word) is peeled a
#: layer a round; past this many layers the rest is made inert instead.
_MAX_ROUNDS = 8

#: Lone surrogates (from a codec such as raw_unicode_escape, or bad input) can't
#: be encoded at all: the email package would fail while folding the header.
_SURROGATE = re.compile(r"[\ud800-\udfff]")

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but ':'
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")  # a display name needing no quotes
_LINE = 78  # RFC 5322's recommended line length; longer names are folded as encoded words

#: What messages are written with. ``refold_source="none"``: header lines made
#: here (set with ``set_raw``) go out exactly as made, never re-parsed and
#: re-folded by the email package.
SMTP = policy.SMTP.clone(refold_source="none")
SMTPUTF8 = policy.SMTPUTF8.clone(refold_source="none")


def header_text(value: str) -> str:
    """One line of plain text for a header: encoded words decoded, control characters gone.

    Control characters become spaces. The result contains nothing the email
    package (or a reader's mail program) would decode into a line break, so it
    is safe to hand to ``EmailMessage`` or to write into a raw header line.
    """
    text = _scrub(value)
    for _ in range(_MAX_ROUNDS):
        if _ENCODED_WORD.search(text) is None:
            return text.strip()
        text = _scrub(_ENCODED_RUN.sub(_decode_run, text))
    # Still encoded after that many layers: hostile. Break every "=?" so that no
    # encoded word can start anywhere; what is left shows as harmless text.
    return text.replace("=?", "= ?").strip()


def _scrub(text: str) -> str:
    """Control characters to spaces, lone surrogates to U+FFFD."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", text))


def _decode_run(match: re.Match[str]) -> str:
    """The text of a run of adjacent encoded words (bytes of one charset joined first)."""
    pieces: list[tuple[str, bytes]] = []
    for word in _ENCODED_WORD.finditer(match.group(0)):
        charset = word.group(1).partition("*")[0].strip().lower()  # RFC 2231 *language
        data = _decode_bytes(word.group(2), word.group(3))
        if pieces and pieces[-1][0] == charset:
            pieces[-1] = (charset, pieces[-1][1] + data)
        else:
            pieces.append((charset, data))
    return "".join(_decode_text(data, charset) for charset, data in pieces)


def _decode_bytes(encoding: str, text: str) -> bytes:
    """The bytes of one word's text; as lenient as the email package, never an error."""
    raw = text.encode("utf-8")
    if encoding in "qQ":
        return binascii.a2b_qp(raw, header=True)
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:  # a stray last character: what the email package keeps too
        return raw


def _decode_text(data: bytes, charset: str) -> str:
    """``data`` read in ``charset``; an unknown or unusable charset reads as UTF-8."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError, TypeError):  # unknown, or not a text codec
        return data.decode("utf-8", "replace")


def safe_address(email: str) -> str:
    """``email`` trimmed, or :class:`UnsafeAddressError` if a header parser could change it.

    An address can't be cleaned like a name (that would send to someone else),
    so one with a control character or an encoded word in it is refused.
    """
    address = email.strip()
    if _CONTROL.search(address) or _ENCODED_WORD.search(address) or " " in address:
        raise UnsafeAddressError(
            f"{address!r} can't be written safely into a mail header "
            "(it contains a control character, a space or an RFC 2047 encoded word)"
        )
    return address


def mailbox(name: str | None, email: str) -> Address:
    """``Name <email>`` as a header value; the name is quoted or encoded as needed."""
    local, _, domain = safe_address(email).rpartition("@")
    if not local or not domain:
        raise UnsafeAddressError(f"not an email address: {email!r}")
    return Address(display_name=header_text(name or ""), username=local, domain=domain)


def safe_mailbox(address: Address) -> Address:
    """An ``Address`` made anywhere, passed through :func:`mailbox` again (idempotent)."""
    return mailbox(address.display_name, f"{address.username}@{address.domain}")


def address_header(address: Address, field: str) -> str:
    """The value of an address header (``field``: From, To…), encoded and folded here.

    A clean name that fits on one line is written as it is, or quoted; a longer
    or non-ASCII one as RFC 2047 encoded words (``email.header``), which fold
    safely and hide nothing: they decode to the cleaned name only.
    """
    clean = safe_mailbox(address)
    spec = clean.addr_spec
    name = clean.display_name
    if not name:
        return spec
    if name.isascii():
        phrase = name if _ATOMS.fullmatch(name) else _quoted(name)
        line = f"{phrase} <{spec}>"
        if len(field) + 2 + len(line.encode()) <= _LINE:
            return line
    words = Header(name, "utf-8", header_name=field).encode(linesep="\r\n")
    last = words.rpartition("\n")[2] if "\n" in words else f"{field}: {words}"
    gap = " " if len(last) + len(spec) + 3 <= _LINE else "\r\n "
    return f"{words}{gap}<{spec}>"


#: An address ``address_header`` writes back unchanged (a dot-atom local part, a plain
#: domain), and a name it writes as it is (ASCII words, single spaces). Neither has a
#: ``?``, legal as it is: without one nothing can be an RFC 2047 encoded word.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_PLAIN_NAME = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")


def plain_address_header(name: str | None, email: str, field: str) -> str | None:
    """What :func:`address_header` makes of a plain name and address, made without the
    email package's parser (most readers' addresses are plain); None for any other."""
    if not _PLAIN_ADDRESS.fullmatch(email):
        return None
    if not name:
        return email
    if _PLAIN_NAME.fullmatch(name) and len(field) + len(name) + len(email) + 5 <= _LINE:
        return f"{name} <{email}>"
    return None


def _quoted(text: str) -> str:
    """An RFC 5322 quoted-string (backslash and double quote escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def header_name(name: str) -> str:
    """A header field name, refused unless it is printable ASCII without a colon."""
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"not a header field name: {name!r}")
    return name


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID under ``domain`` (kept to trace replies)."""
    return make_msgid(domain=domain)


def build_message(
    *,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    now: datetime,
    reply_to: Address | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A complete message; ``headers`` adds more (List-*, Auto-Submitted …), all made safe."""
    message = EmailMessage()
    message.set_raw("From", address_header(sender, "From"))
    message.set_raw("To", address_header(to, "To"))
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = header_text(message_id)
    if reply_to is not None:
        message.set_raw("Reply-To", address_header(reply_to, "Reply-To"))
    for name, value in (headers or {}).items():
        message[header_name(name)] = header_text(value)
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def needs_smtputf8(*addresses: str) -> bool:
    """Whether an address has a non-ASCII local part or domain (RFC 6531)."""
    return not all(address.isascii() for address in addresses)


def to_bytes(message: EmailMessage, *addresses: str) -> bytes:
    """The message as sent over SMTP (CRLF); raw UTF-8 headers only when an address needs it."""
    utf8 = needs_smtputf8(*addresses)
    return message.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)
