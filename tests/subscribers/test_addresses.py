"""The fast path for plain addresses judges exactly as email-validator does.

``addresses._plain_key`` answers for plain ASCII addresses without calling
email-validator for each one; every address here, tricky ones and ones it must
refuse included, is judged by it and by email-validator and the two compared.
"""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from subscribers import addresses
from subscribers.addresses import parse_address
from subscribers.errors import AddressError

TRICKY = [
    "reader@example.org",
    "Reader.Name@Example.ORG",
    "INFO@example.org",
    "Postmaster@EXAMPLE.org",
    "a+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "x!#$%&'*+-/=?^_`{|}~@example.org",
    "first.last@xn--bcher-kva.de",
    "user@xn--ls8h.la",
    "user@xn--abc.org",
    "user@ab--cd.org",
    "user@xn--zz-0ha.org",
    "user@exa_mple.org",
    "user@-example.org",
    "user@example-.org",
    "user@example.-org",
    "user@example..org",
    "user@.example.org",
    "user@example.org.",
    "user@example",
    "user@example.123",
    "user@localhost",
    "user@example.local",
    "user@site.test",
    "user@x.invalid",
    "user@onion",
    "user@[127.0.0.1]",
    "user@[IPv6:::1]",
    "user@",
    "@example.org",
    "user",
    "user@@example.org",
    "us@er@example.org",
    ".user@example.org",
    "user.@example.org",
    "us..er@example.org",
    '"quoted"@example.org',
    '"a b"@example.org',
    "Name <user@example.org>",
    "<user@example.org>",
    "user@exam ple.org",
    "us er@example.org",
    "user\t@example.org",
    "user@example.org\x00",
    "user\x7f@example.org",
    "user@EXAMPLE.ORG",
    "user@Ex\u00e1mple.org",
    "j\u00f6rg@example.org",
    "jo\u0308rg@example.org",
    "user@\u0338example.org",
    "user\u0338@example.org",
    "user\uff20example.org",
    "user@example\u3002org",
    "user@\u2024example.org",
    "user@example.org\u200b",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "a@" + "b" * 63 + ".org",
    "a@" + "b" * 64 + ".org",
    "a" * 60 + "@" + ".".join(["b" * 40] * 4) + ".org",
    "a" * 80 + "@" + ".".join(["b" * 40] * 4) + ".org",
    "a" * 89 + "@" + ".".join(["b" * 40] * 4) + ".org",
    "a" * 90 + "@" + ".".join(["b" * 40] * 4) + ".org",
    "a@" + ".".join(["b" * 50] * 5) + ".org",
    "a" * 200 + "@x\u00e1.org",
    "a" * 240 + "@xn--bcher-kva.de",
]

#: Random addresses are made of plain pieces, then some get one piece of trouble.
LOCAL = "abcdXYZ0189_+-'"
DOMAIN = "abcdefghXYZ0189-"
TROUBLE = [*"'@\".-<>[]: \t()\\", "xn--", "--", "\u00e1", "\u0338", "\x00", "\uff0e", "\u3002"]


def library_key(raw: str) -> str | None:
    """What email-validator makes of ``raw``: the key, or None where it refuses it."""
    try:
        valid = validate_email(raw, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return valid.normalized.lower()


def random_addresses(count: int) -> list[str]:
    chooser = random.Random(16)

    def word(letters: str, longest: int) -> str:
        return "".join(chooser.choices(letters, k=chooser.randint(1, longest)))

    made = []
    for _ in range(count):
        local = ".".join(word(LOCAL, 8) for _ in range(chooser.randint(1, 3)))
        labels = [word(DOMAIN, 12) for _ in range(chooser.randint(1, 3))]
        address = f"{local}@{'.'.join(labels)}.{chooser.choice(['org', 'DE', 'x1', 'test', ''])}"
        if chooser.random() < 0.4:
            at = chooser.randint(0, len(address))
            cut = chooser.randint(0, 1)
            address = address[:at] + chooser.choice(TROUBLE) + address[at + cut :]
        made.append(address)
    return made


@pytest.mark.parametrize("raw", TRICKY + random_addresses(5000))
def test_the_fast_path_answers_as_email_validator_does(raw: str) -> None:
    key = addresses._plain_key(raw)
    if key is not None:
        assert key == library_key(raw)
    typed = raw.strip()  # as parse_address trims it
    if not typed:
        return
    try:
        address = parse_address(raw)
    except AddressError as exc:
        with pytest.raises(EmailNotValidError) as refused:
            validate_email(typed, check_deliverability=False, allow_smtputf8=True)
        assert str(exc) == f"{typed!r} is not a valid email address: {refused.value}"
    else:
        assert address.key == library_key(typed)


def test_common_addresses_take_the_fast_path() -> None:
    for raw in ["reader.7@example.org", "Ann@Example.ORG", "a+b@mail.example.co.uk"]:
        assert addresses._plain_key(raw) == library_key(raw)
    assert addresses._plain_key("first.last@xn--bcher-kva.de") is None  # international
    assert addresses._plain_key("user@localhost") is None  # refused: email-validator says why


def test_the_domain_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addresses, "_DOMAINS_KEPT", 10)
    monkeypatch.setattr(addresses, "_DOMAINS", {})
    for n in range(35):
        assert addresses._plain_key(f"user@host{n}.example.org") == f"user@host{n}.example.org"
    assert len(addresses._DOMAINS) <= 10
