"""Email addresses, validated and normalised by email-validator; and names.

The address is kept as the person typed it (trimmed); ``key`` is the normalised
form, lower-cased, which makes the address unique regardless of letter case.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from subscribers.errors import AddressError

#: An RFC 2047 encoded word. Its characters are all legal in a local part, but a
#: mail program decodes it in a header (into anything, CR/LF included), so the
#: address could not be written without changing it. digest.send.message refuses
#: the same shape when writing headers.
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")


@dataclass(frozen=True)
class Address:
    typed: str
    key: str


def parse_address(raw: str) -> Address:
    """Validate ``raw`` (internationalised addresses accepted) or raise ``AddressError``."""
    typed = raw.strip()
    if not typed:
        raise AddressError("the email address is empty")
    if _ENCODED_WORD.search(typed):
        raise AddressError(
            f"{typed!r} is not accepted: it contains an encoded word (=?…?=), "
            "which mail programs would decode; use the plain address"
        )
    try:
        valid = validate_email(typed, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise AddressError(f"{typed!r} is not a valid email address: {exc}") from exc
    return Address(typed=typed, key=valid.normalized.lower())


def suppression_hash(key: str) -> str:
    """What is kept of an erased address: enough to recognise it, not to read it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


#: What never belongs in a name: control characters (Unicode category Cc: NUL, CR,
#: LF, TAB, ESC …) and the line and paragraph separators. PostgreSQL refuses NUL
#: in text, mail headers must never see CR/LF, and terminals act on ESC.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_name(name: str | None) -> str | None:
    """A name as stored: with control characters, each run of them and the spaces
    around it becomes one space; an empty result means no name.

    Every name enters through ``audience.plan_join`` (the form, the CLI, CSV imports),
    which calls this; names without control characters are kept as they are.
    """
    if name is None:
        return None
    if _CONTROLS.search(name):
        name = " ".join(_CONTROLS.sub(" ", name).split())
    return name or None
