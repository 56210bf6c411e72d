"""The fast per-recipient message equals what the email package itself would build."""

from __future__ import annotations

import base64
import email
import email.policy
import subprocess
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from digest.ledger import FrozenEdition, Recipient
from digest.render.renderer import RenderedEdition
from digest.send.compose import EditionComposer
from digest.send.links import Links
from digest.send.message import build_message, mailbox, to_bytes
from digest.settings import DeliverySettings, Settings
from subscribers.tokens import Signer

NOW = datetime(2017, 11, 2, 7, 0, tzinfo=UTC)
SALT = "0123456789abcdef"


def composer_for(rendered: RenderedEdition, settings: Settings) -> EditionComposer:
    edition = FrozenEdition(
        id=1,
        date=date(2017, 11, 2),
        version=1,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        salt=SALT,
    )
    return EditionComposer(edition, settings, Links.from_settings(settings))


def parse(raw: bytes) -> EmailMessage:
    """As an SMTPUTF8 client reads it: headers may be raw UTF-8 (RFC 6532)."""
    message = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


SETTINGS = Settings(secret_key=SecretStr("compose-tests-secret-0123"))


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("Ann Reader", "ann@example.org"),
        (None, "bo@example.org"),
        ('Dr. "Quoted", Jr.', "quoted@example.org"),
        ("Zoë Ünïcode-Ñame", "zoe@example.org"),
        ("Zoë", "zoë@exämple.org"),
        ("Eve\r\nBcc: victim@example.org", "eve@example.org"),
    ],
)
def test_message_parses_to_the_intended_headers_and_bodies(
    example_rendered: RenderedEdition, name: str | None, address: str
) -> None:
    """Headers decode to the values given; bodies decode to the filled templates exactly."""
    composer = composer_for(example_rendered, SETTINGS)
    recipient = Recipient(42, 7, address, address.lower(), name, 0)
    composed = composer.compose(recipient, NOW)
    message = parse(composed.raw)
    assert message["To"].addresses[0].addr_spec == address
    expected_name = (name or "").replace("\r\n", " ").strip()
    assert message["To"].addresses[0].display_name == " ".join(expected_name.split())
    assert message["Bcc"] is None
    assert message["Subject"] == "Executive Summary for November 2nd"
    assert message["From"] == "The Morning Ledger <briefing@news.example.org>"
    assert message["Reply-To"] == "The Morning Ledger <desk@news.example.org>"
    assert (
        message["Message-ID"]
        == composed.message_id
        == f"<20171102.42.{Signer('compose-tests-secret-0123').message_tag(42, SALT)}@news.example.org>"
    )
    assert message["Date"].datetime == NOW
    unsubscribe = Links.from_settings(SETTINGS).unsubscribe_url_for(7, address.lower())
    values = {"unsubscribe_url": unsubscribe, "recipient_email": address}
    from digest.render.renderer import personalise

    html, text = personalise(example_rendered, values)
    reference = parse(  # the same content, built the slow way by the email package
        to_bytes(
            build_message(
                sender=mailbox("The Morning Ledger", "briefing@news.example.org"),
                to=mailbox(name, address),
                subject=example_rendered.subject,
                text=text,
                html=html,
                message_id=composed.message_id,
                now=NOW,
            ),
            address,
        )
    )
    ours = [part.get_content() for part in message.iter_parts()]
    assert ours == [part.get_content() for part in reference.iter_parts()]
    # as with the email package, a body gets a final line end if it had none
    assert ours[0].replace("\r\n", "\n") == text
    assert ours[1].replace("\r\n", "\n") == html + ("" if html.endswith("\n") else "\n")
    assert message["To"] == reference["To"]
    for line in composed.raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"):
        assert len(line) <= 76, line  # quoted-printable keeps lines short


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.emails())
def test_any_name_and_address_round_trip(name: str, address: str) -> None:
    """Whatever the name (any Unicode, control characters), To decodes back to it.

    Decoded by RFC 2047's rules (``email.header``): the newer header parser adds a
    space between adjacent encoded words, which RFC 2047 says to drop.
    """
    from email.header import decode_header, make_header
    from email.utils import unquote

    from digest.send.compose import to_header
    from digest.send.message import header_text

    value = to_header(name, address)
    assert "\n" not in value.replace("\r\n ", "") and "\r" not in value.replace("\r\n ", "")
    decoded = str(make_header(decode_header(value)))
    expected = " ".join(header_text(name).split())
    if not expected:
        assert decoded == address
        return
    shown, _, addr = decoded.rpartition(" <")
    assert addr == address + ">"
    if shown.startswith('"') and shown.endswith('"'):
        shown = unquote(shown)
    assert " ".join(shown.split()) == expected


def test_dkim_signature_verifies_and_covers_list_headers(
    example_rendered: RenderedEdition, tmp_path: Path
) -> None:
    """With a key configured, each message carries a DKIM signature that verifies."""
    key = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signed = Settings(
        secret_key=SecretStr("compose-tests-secret-0123"),
        delivery=DeliverySettings(dkim_selector="brief", dkim_private_key_file=key),
    )
    raw = (
        composer_for(example_rendered, signed)
        .compose(Recipient(1, 1, "ann@example.org", "ann@example.org", "Ann", 0), NOW)
        .raw
    )
    signature = parse(raw)["DKIM-Signature"]
    assert "d=news.example.org" in signature and "s=brief" in signature
    tags = dict(part.strip().split("=", 1) for part in str(signature).split(";") if "=" in part)
    signed_headers = tags["h"].replace(" ", "").split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= set(signed_headers)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"brief._domainkey.news.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"
    )
    assert not dkim.verify(tampered, dnsfunc=dns)


_ADDRESSES = st.one_of(
    st.emails(),
    st.from_regex(r"[a-z.!#'`~=?-]{1,8}@[a-z0-9.-]{1,10}", fullmatch=True),
    st.sampled_from(["a..b@x.org", ".a@x.org", "a.@x.org", "a@x..org", "a@-x.org", "é@x.org"]),
    st.just("=?utf-8?q?a=0D=0AX-Injected:_yes=0D=0A?=@example.org"),
)
_NAMES = st.one_of(
    st.none(),
    st.just(""),
    st.from_regex(r"[A-Za-z0-9 .,=?\"'!#~-]{1,40}", fullmatch=True),
    st.sampled_from(["Ann Reader", " Ann", "Ann  Reader", "=?utf-8?q?Eve?=", "Dr. Who", "A" * 70]),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(_NAMES, _ADDRESSES)
def test_a_plain_name_and_address_are_written_as_the_full_path_writes_them(
    name: str | None, address: str
) -> None:
    """``to_header``'s shortcut for plain names and addresses changes nothing."""
    from digest.errors import UnsafeAddressError
    from digest.send.compose import to_header
    from digest.send.message import address_header

    try:
        expected = address_header(mailbox(name, address), "To")
    except UnsafeAddressError:
        with pytest.raises(UnsafeAddressError):
            to_header(name, address)
        return
    assert to_header(name, address) == expected
