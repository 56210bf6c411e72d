"""Email addresses, validated and normalised by email-validator; and names.

The address is kept as the person typed it (trimmed); ``key`` is the normalised
form, lower-cased, which makes the address unique regardless of letter case.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT

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

    def __reduce__(self) -> tuple[type[Address], tuple[str, str]]:
        # a third cheaper to pickle than a dataclass's default, for the import's
        # checking process, which sends every row's address back
        return Address, (self.typed, self.key)


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
    key = _plain_key(typed)
    if key is None:
        try:
            valid = validate_email(typed, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            raise AddressError(f"{typed!r} is not a valid email address: {exc}") from exc
        key = valid.normalized.lower()
    return Address(typed=typed, key=key)


#: The longest address email-validator accepts (RFC 3696 errata, in UTF-8 bytes).
_MAX_LENGTH = 254
#: Domains seen, each with its form as email-validator normalises it, or None where
#: the address must go through email-validator whole (refused or international).
_DOMAINS: dict[str, str | None] = {}
#: The cache starts again when it holds this many domains: bounded memory however
#: many different domains a file has (a real list has a few thousand at most).
_DOMAINS_KEPT = 50_000


def _plain_key(typed: str) -> str | None:
    """The key of a plain ASCII address ``local@domain`` as email-validator would
    make it, or None: then email-validator must judge the address itself.

    A plain address is ASCII, with one @-sign, a local part that is a dot-atom
    (email-validator's own ``DOT_ATOM_TEXT``) and at most 254 characters. For such
    an address email-validator splits at the @-sign (no quotes, angle brackets or
    combining characters to consider), accepts the local part as it is, and judges
    the domain on its own; only the length checks look at both. So the domain's
    verdict is asked of email-validator once (with the local part ``a``) and kept:
    its normalised form when valid and all ASCII, else None. The lengths are then
    checked here as email-validator checks them (ASCII: characters are bytes).
    ``tests/subscribers/test_addresses.py`` compares this with email-validator.
    """
    if len(typed) > _MAX_LENGTH or not typed.isascii():
        return None
    local, at, domain = typed.partition("@")
    if not at or "@" in domain or not DOT_ATOM_TEXT.match(local):
        return None
    try:
        normalized = _DOMAINS[domain]
    except KeyError:
        normalized = _DOMAINS[domain] = _domain_verdict(domain)
    if normalized is None or len(local) + 1 + len(normalized) > _MAX_LENGTH:
        return None
    return f"{local}@{normalized}".lower()


def _domain_verdict(domain: str) -> str | None:
    if len(_DOMAINS) >= _DOMAINS_KEPT:
        _DOMAINS.clear()
    try:
        valid = validate_email("a@" + domain, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return valid.domain if valid.domain == valid.ascii_domain else None


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
