"""Header injection through RFC 2047 encoded words is impossible on every path.

Python's email package decodes ``=?utf-8?b?…?=`` in the header values it is
given and, before the CVE-2024-6923 fix (3.11.10), writes a decoded CR/LF out as
a real line break. Each way outside text reaches a header is tried end to end —
the sign-up form's name, a CSV subscriber's name, an edition's subject, the
publication's names and List-Id, an address — and each message the real SMTP
server received is parsed back and checked header by header.
"""

from __future__ import annotations

import base64
import email
import email.policy
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from digest.edition.files import EXAMPLE_EDITION
from digest.ledger import DeliveryStatus
from digest.send.compose import to_header
from digest.send.message import build_message, header_text, mailbox, to_bytes
from digest.send.publish import freeze_source, plan_send
from digest.settings import DeliverySettings, Publication, Settings, WebSettings
from digest.web.public import create_app
from subscribers import audience
from subscribers.addresses import Address
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.models import ConsentMethod
from tests.helpers import Clock, deliveries
from tests.mailserver import SMTPServer

NOW = datetime(2017, 11, 2, 7, 0, tzinfo=UTC)
ATTACK = "<h1>You won! Claim at https://evil.example</h1>"


def b_word(text: str) -> str:
    """``text`` as one base64 encoded word, CR/LF and all."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def q_word(text: str) -> str:
    """``text`` as one quoted-printable encoded word, every byte escaped."""
    return "=?utf-8?q?" + "".join(f"={byte:02X}" for byte in text.encode()) + "?="


FORM_NAME = b_word(f"Reader\r\nBcc: x@evil.example\r\nContent-Type: text/html\r\n\r\n{ATTACK}")
CSV_NAME = b_word(f"Reader\r\nX-Injected: yes\r\nContent-Type: text/html\r\n\r\n{ATTACK}")
SUBJECT = q_word(f"Hello\r\nX-Injected: yes\r\nBcc: x@evil.example\r\n\r\n{ATTACK}")

CONFIRMATION_HEADERS = {
    "from", "to", "subject", "date", "message-id", "reply-to", "auto-submitted",
    "mime-version", "content-type",
}  # fmt: skip
EDITION_HEADERS = {
    "from", "to", "subject", "date", "message-id", "reply-to", "list-id",
    "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type",
}  # fmt: skip


def one_line(text: str) -> str:
    """What a header shows for ``text`` with its line breaks made harmless spaces."""
    return " ".join(text.split())


def same_text(shown: str, text: str) -> bool:
    """A header shows ``text``, spaces aside.

    Python's parser adds a space between adjacent encoded words in a name (RFC
    2047 says to drop it) and its folder moves spaces around the encoded words it
    makes, so spaces are not compared; line breaks are checked on their own.
    """
    return "".join(shown.split()) == "".join(text.split())


def assert_intact(message: EmailMessage, headers: set[str], to: str, body: str) -> None:
    """Exactly our headers, once each, on one line; one recipient; the real bodies."""
    names = [key.lower() for key in message]
    assert sorted(names) == sorted(headers), names  # no Bcc, X-Injected, second Content-Type
    for value in message.values():
        assert "\r" not in str(value) and "\n" not in str(value), value
    assert [a.addr_spec for a in message["To"].addresses] == [to]
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content() for part in message.iter_parts()]
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(ATTACK not in str(part) for part in parts)
    assert body in parts[0] and body in parts[1]


def edition_settings(
    tmp_path: Path,
    db_url: str,
    smtp_server: SMTPServer,
    publication: Publication | None = None,
    list_id: str | None = None,
) -> Settings:
    """Settings sending the example edition to ``smtp_server``."""
    editions = tmp_path / "editions"
    editions.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    return Settings(
        database_url=db_url,
        delivery_url=SecretStr(smtp_server.url),
        secret_key=SecretStr("header-injection-secret-0123"),
        editions_dir=editions,
        web=WebSettings(public_url="https://list.news.example.org"),
        delivery=DeliverySettings(connections=1, list_id=list_id),
        publication=publication or Publication(),
    )


def send_edition(db: Database, settings: Settings) -> None:
    frozen = freeze_source(db, settings, "2017-11-02")
    plan_send(db, settings, frozen.edition).sender.run()


@pytest.fixture
def client(db: Database, smtp_server: SMTPServer) -> Iterator[TestClient]:
    settings = Settings(
        delivery_url=SecretStr(smtp_server.url),
        secret_key=SecretStr("header-injection-secret-0123"),
        web=WebSettings(public_url="https://news.example.org/list"),
    )
    with TestClient(create_app(settings, db)) as test_client:
        yield test_client


#: What a browser posting our own form sends (the cross-site check lets it through).
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


def test_sign_up_name_as_encoded_word_cannot_add_headers_or_a_body(
    client: TestClient, smtp_server: SMTPServer
) -> None:
    """POST /subscribe with a name hiding Bcc, Content-Type and a body: the mail is ours."""
    response = client.post(
        "/subscribe",
        data={"email": "reader@example.org", "name": FORM_NAME, "website": ""},
        headers=SAME_SITE,
    )
    assert response.status_code == 200
    [received] = smtp_server.inbox.messages
    assert received.recipients == ["reader@example.org"]
    message = received.message
    assert_intact(message, CONFIRMATION_HEADERS, "reader@example.org", "/confirm/")
    shown = one_line(f"Reader\r\nBcc: x@evil.example\r\nContent-Type: text/html\r\n\r\n{ATTACK}")
    assert same_text(message["To"].addresses[0].display_name, shown)


def test_sign_up_with_an_encoded_word_as_the_address_is_refused(
    client: TestClient, smtp_server: SMTPServer
) -> None:
    """Its characters are legal in a local part, but a header parser decodes it: refused."""
    local = b_word("a\r\nBcc: x@evil.example\r\n")
    response = client.post(
        "/subscribe",
        data={"email": f"{local}@example.org", "name": "", "website": ""},
        headers=SAME_SITE,
    )
    assert response.status_code == 400 and "encoded word" in response.text
    assert smtp_server.inbox.messages == []


def test_csv_name_as_encoded_word_cannot_add_headers_to_an_edition(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """CSV subscribers named with hidden X-Injected and a body (ASCII or not) get the edition."""
    settings = edition_settings(tmp_path, db_url, smtp_server)
    path = tmp_path / "names.csv"
    rows = f"eve@example.org,{CSV_NAME}\nzoe@example.org,Zoë {CSV_NAME}\nann@example.org,Ann\n"
    path.write_text("email,name\n" + rows, encoding="utf-8")
    assert import_csv(db, path, Clock(), confirmed=True).rejected == 0
    send_edition(db, settings)
    by_recipient = {tuple(r.recipients): r.message for r in smtp_server.inbox.messages}
    expected = [("ann@example.org",), ("eve@example.org",), ("zoe@example.org",)]
    assert sorted(by_recipient) == expected
    for (to,), message in by_recipient.items():
        assert_intact(message, EDITION_HEADERS, to, "harbour")
    shown = f"Reader\r\nX-Injected: yes\r\nContent-Type: text/html\r\n\r\n{ATTACK}"
    eve, zoe = by_recipient[expected[1]], by_recipient[expected[2]]
    assert same_text(eve["To"].addresses[0].display_name, shown)
    assert same_text(zoe["To"].addresses[0].display_name, f"Zoë {shown}")


def test_subject_from_name_and_list_id_as_encoded_words_cannot_add_headers(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """An edition's subject:, the sender name, publication name and List-Id: all one line."""
    hidden = f"\r\nX-Injected: yes\r\n\r\n{ATTACK}"
    publication = Publication(name=b_word(f"Ledger{hidden}"), sender_name=q_word(f"Desk{hidden}"))
    list_id = b_word(f"List{hidden}") + " <briefing.news.example.org>"
    settings = edition_settings(
        tmp_path, db_url, smtp_server, publication=publication, list_id=list_id
    )
    edition = settings.editions_dir / "2017-11-02.md"
    edition.write_text(
        edition.read_text().replace("date: 2017-11-02", f"date: 2017-11-02\nsubject: '{SUBJECT}'")
    )
    path = tmp_path / "readers.csv"
    path.write_text("email,name\nann@example.org,Ann\n", encoding="utf-8")
    assert import_csv(db, path, Clock(), confirmed=True).rejected == 0
    send_edition(db, settings)
    [received] = smtp_server.inbox.messages
    message = received.message
    assert_intact(message, EDITION_HEADERS, "ann@example.org", "harbour")
    shown = f"Hello\r\nX-Injected: yes\r\nBcc: x@evil.example\r\n\r\n{ATTACK}"
    assert message["Subject"] == one_line(shown)
    assert same_text(message["From"].addresses[0].display_name, f"Desk{hidden}")
    assert same_text(message["Reply-To"].addresses[0].display_name, f"Ledger{hidden}")
    assert str(message["List-Id"]) == one_line(f"List{hidden}") + " <briefing.news.example.org>"


def test_a_stored_encoded_word_address_fails_that_delivery_only(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """An address let in before sign-up refused it is never written; the others are sent."""
    settings = edition_settings(tmp_path, db_url, smtp_server)
    hostile = b_word("a\r\nX-Injected: yes\r\n") + "@example.org"
    evidence = audience.ConsentEvidence(ConsentMethod.import_)
    with db.transaction() as session:
        for typed in ("ann@example.org", hostile):
            audience.join(session, Address(typed, typed.lower()), NOW, evidence, confirmed=True)
    send_edition(db, settings)
    assert [r.recipients for r in smtp_server.inbox.messages] == [["ann@example.org"]]
    assert_intact(
        smtp_server.inbox.messages[0].message, EDITION_HEADERS, "ann@example.org", "harbour"
    )
    statuses = sorted(row.status for row in deliveries(db))
    assert statuses == sorted([DeliveryStatus.sent, DeliveryStatus.failed])


# --- the one function, for any text ---------------------------------------------

CONTROLS = "\r\n\t\x00\x0b\x0c\x1c\x1e\x7f\x85\x9b\u2028\u2029"
plain = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(CONTROLS), max_size=30)


@st.composite
def encoded(draw: st.DrawFn) -> str:
    """Text wrapped in encoded words, nested up to three deep, in assorted charsets."""
    text = draw(plain)
    for _ in range(draw(st.integers(0, 3))):
        charset = draw(st.sampled_from(["utf-8", "UTF-8", "utf-8*en", "latin-1", "bogus"]))
        data = text.encode("utf-8" if charset != "latin-1" else "latin-1", "replace")
        if draw(st.booleans()):
            text = f"=?{charset}?B?{base64.b64encode(data).decode()}?="
        else:
            text = f"=?{charset}?q?" + "".join(f"={b:02X}" for b in data) + "?="
    return text


header_values = st.lists(plain | encoded(), max_size=5).map(" ".join)


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@settings(max_examples=300, deadline=None)
@given(header_values)
def test_header_text_output_folds_into_exactly_one_line_of_one_header(value: str) -> None:
    """For any text, the cleaned value as Subject and To name parses back as one header each."""
    clean = header_text(value)
    assert header_text(clean) == clean  # nothing left to decode or remove
    raw = to_bytes(
        build_message(
            sender=mailbox("Desk", "desk@example.org"),
            to=mailbox(value, "ann@example.org"),
            subject=value,
            text="the real body",
            html=None,
            message_id="<1@example.org>",
            now=NOW,
        ),
        "ann@example.org",
    )
    message = parsed(raw)
    expected = ["From", "To", "Subject", "Date", "Message-ID", "Content-Type"]
    expected += ["Content-Transfer-Encoding", "MIME-Version"]
    assert message.keys() == expected
    for header in message.values():
        assert "\r" not in str(header) and "\n" not in str(header)
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert same_text(message["Subject"], clean)
    assert message.get_content().strip() == "the real body"
    fast = parsed(f"To: {to_header(value, 'ann@example.org')}\r\n\r\nbody\r\n".encode())
    assert fast.keys() == ["To"] and "\n" not in str(fast["To"])
    assert [a.addr_spec for a in fast["To"].addresses] == ["ann@example.org"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (q_word("=?utf-8?b?" + base64.b64encode(b"a\r\nBcc: x").decode() + "?="), "a Bcc: x"),
        ("=?utf-8?q?Zo?= =?utf-8?q?=C3=AB?= et =?iso-8859-1?q?caf=E9?=", "Zoë et café"),
        ("a\x85b\u2028c\u2029d\x9be\x7ff\tg", "a b c d e f g"),
        ("=?utf-8?q?=0D=0A?=", ""),
        ("5 =? 6 and a?=b", "5 =? 6 and a?=b"),
    ],
)
def test_header_text_decodes_then_strips(value: str, shown: str) -> None:
    """Nested words peeled, adjacent words joined, C1/DEL/U+2028/2029 gone, plain text kept."""
    assert header_text(value) == shown


def test_deeply_nested_words_are_made_inert() -> None:
    """Past the round limit nothing that could start an encoded word is left."""
    value = "x\r\nX-Injected: yes"
    for _ in range(12):
        value = b_word(value)
    clean = header_text(value)
    assert "=?" not in clean and "\n" not in clean and header_text(clean) == clean
