"""Plain helpers the tests share: paths, the CLI runner, a hand-moved clock, scenarios.

Test modules import from here (never from one another, and never from a
``conftest.py``), so each test module can be read, run and changed on its own.
Fixtures live in ``conftest.py`` and the fixture modules it collects.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from digest.cli.app import main
from digest.edition.files import EXAMPLE_EDITION
from digest.feedback.models import Feedback
from digest.feedback.store import Filer
from digest.ledger import Delivery, FrozenEdition
from digest.send.publish import freeze_source, plan_send
from digest.settings import DeliverySettings, FeedbackSettings, Settings, WebSettings
from subscribers import audience
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.models import Status
from subscribers.tokens import Signer

if TYPE_CHECKING:
    from tests.dovecot import ImapServer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ARTIFACTS = Path(os.environ.get("DIGEST_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def need_service(available: bool, reason: str) -> None:
    """Skip when a real service is missing; fail instead under DIGEST_REQUIRE_SERVICES=1."""
    if available:
        return
    if os.environ.get("DIGEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def edition_text(body: str, front: str = "date: 2017-11-02\n") -> str:
    """An edition file's text from its front matter lines and Markdown body."""
    return f"---\n{front}---\n{body}"


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2017, 11, 2, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` if it never does.

    Only for something that must happen: the wait ends as soon as it does, and the
    generous bound only turns a hang into a failure. Never use it to show that
    something did not happen; wait instead for an event that comes after it.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The `digest` command in this process: its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as caught:
        main(args)
    out, err = capsys.readouterr()
    code = caught.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out, err


def add_subscribers(
    db: Database, tmp_path: Path, emails: list[str], confirmed: bool = True
) -> None:
    """Subscribe ``emails`` through a CSV import, in order (subscriber N is emails[N-1])."""
    path = tmp_path / f"add-{len(emails)}-{emails[0]}.csv"
    path.write_text("email,name\n" + "".join(f"{e},\n" for e in emails), encoding="utf-8")
    report = import_csv(db, path, Clock(), confirmed=confirmed)
    assert report.rejected == 0


def deliveries(db: Database) -> list[Delivery]:
    """Every row of the delivery ledger, oldest first, detached from its session."""
    with db.transaction() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        session.expunge_all()
    return rows


# --- the sent edition the feedback corpus answers (tests/data/feedback/corpus.toml) ---
#
# Ten subscribers get the example edition of 2017-11-02 through the maildir
# outbox, with a fixed secret and a fixed edition salt, so the Message-IDs and
# VERP tokens written into the corpus files are the ones in the ledger.

FEEDBACK_DATA = DATA / "feedback"
FEEDBACK_SECRET = "feedback-corpus-secret-0001"
FEEDBACK_SALT = "c0ffee0123456789"
READERS = [
    "ana.lima@gmail.com",
    "ben.okafor@outlook.com",
    "chloe.martin@icloud.com",
    "dieter.mueller@example.de",
    "emma.nguyen@example.com",
    "farid.haddad@example.net",
    "grace.ito@example.org",
    "hugo.silva@example.com.br",
    "ines.kowalska@example.pl",
    "jon.berg@example.no",
]


def message_id(number: int) -> str:
    """The Message-ID delivery ``number`` was sent with."""
    tag = Signer(FEEDBACK_SECRET).message_tag(number, FEEDBACK_SALT)
    return f"<20171102.{number}.{tag}@news.example.org>"


def scenario_settings(tmp_path: Path, db_url: str, **feedback: object) -> Settings:
    """Settings for the feedback scenario; ``feedback`` are [feedback] settings."""
    editions = tmp_path / "editions"
    editions.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    return Settings(
        database_url=db_url,
        delivery_url=SecretStr(f"maildir:{tmp_path / 'outbox'}"),
        secret_key=SecretStr(FEEDBACK_SECRET),
        editions_dir=editions,
        web=WebSettings(public_url="https://list.news.example.org"),
        delivery=DeliverySettings(verp=True, connections=1),
        feedback=FeedbackSettings.model_validate(feedback),
    )


def send_scenario(db: Database, settings: Settings, tmp_path: Path) -> None:
    """Subscribers 1–10 in order, then the edition to them: delivery N is reader N."""
    path = tmp_path / "readers.csv"
    path.write_text("email\n" + "".join(f"{e}\n" for e in READERS), encoding="utf-8")
    assert import_csv(db, path, Clock(), confirmed=True).rejected == 0
    frozen = freeze_source(db, settings, "2017-11-02")
    with db.transaction() as session:
        session.execute(
            update(FrozenEdition)
            .where(FrozenEdition.id == frozen.edition.id)
            .values(salt=FEEDBACK_SALT)
        )
    frozen.edition.salt = FEEDBACK_SALT
    result = plan_send(db, settings, frozen.edition).sender.run()
    assert result.sent == len(READERS)


def reader_reply(number: int, serial: int, padding: int = 0) -> bytes:
    """A reply from reader ``number`` (wrapping round) to the delivery that reader got."""
    message = EmailMessage()
    message["From"] = READERS[(number - 1) % len(READERS)]
    message["To"] = "desk@news.example.org"
    message["Subject"] = "Re: Executive Summary for November 2nd"
    message["Message-ID"] = f"<reply-{serial}@mail.example.com>"
    message["In-Reply-To"] = message_id((number - 1) % len(READERS) + 1)
    message.set_content(f"Reply number {serial}.\n" + "More words. " * padding)
    return message.as_bytes()


def append_all(imap: ImapServer, messages: list[bytes], folder: str = "INBOX") -> None:
    """Put ``messages`` into a folder of the test IMAP server."""
    with imap.client() as connection:
        for raw in messages:
            assert connection.append(folder, None, None, raw)[0] == "OK"


@dataclass
class Scenario:
    db: Database
    settings: Settings
    tmp: Path

    def filer(self) -> Filer:
        return Filer(self.db, self.settings)

    def rows(self) -> list[Feedback]:
        with self.db.transaction() as session:
            found = list(session.scalars(select(Feedback).order_by(Feedback.id)))
            session.expunge_all()
        return found

    def status_of(self, email: str) -> Status:
        with self.db.transaction() as session:
            return audience.get(session, email).status

    def delivery(self, number: int) -> Delivery:
        with self.db.transaction() as session:
            found = session.get(Delivery, number)
            assert found is not None
            session.expunge(found)
            return found


def permanent_bounce(
    scenario: Scenario, delivery_id: int, own_id: str, status: str = "5.2.2"
) -> bytes:
    """A DSN to the VERP address of ``delivery_id``, failed for good with ``status``."""
    with scenario.db.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.subscriber_id is not None
        address = READERS[delivery.subscriber_id - 1]
    token = scenario.filer().signer.delivery_token(delivery_id)
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: bounces+{token}@news.example.org\nMessage-ID: {own_id}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe mail system could not deliver it.\n\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} refused\n\n--b--\n"
    ).encode()


def encoded_word_subject(words: int) -> bytes:
    """A stranger's message whose Subject is ``words`` RFC 2047 encoded words: the standard
    library's header decoding is quadratic in them."""
    subject = " ".join(["=?utf-8?q?a?="] * words)
    return (
        f"From: stranger@example.com\nTo: desk@news.example.org\nSubject: {subject}\n"
        "Message-ID: <encoded-words@example.com>\n\nHello.\n"
    ).encode()


def many_recipient_report(blocks: int) -> bytes:
    """A delivery report (RFC 3464) with ``blocks`` per-recipient blocks: each is a part."""
    blocks_text = "".join(
        f"\nFinal-Recipient: rfc822; r{n}@example.net\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
        for n in range(blocks)
    )
    return (
        "From: MAILER-DAEMON@mx.example.net\nTo: bounces@news.example.org\n"
        "Message-ID: <many-recipients@mx.example.net>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThe mail system could not deliver your message.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n"
        f"{blocks_text}\n--B--\n"
    ).encode()


def html_only_reply(megabytes: float) -> bytes:
    """An HTML-only message of about ``megabytes`` MB: one short answer, then a long table."""
    row = (
        "<tr><td>Cell <b>bold</b> text</td><td><a href='https://example.com/x'>link</a></td></tr>\n"
    )
    table = row * int(megabytes * 1e6 / len(row))
    return (
        "From: reader@example.com\nTo: desk@news.example.org\nSubject: Re: the table\n"
        "Message-ID: <html-only@example.com>\nMIME-Version: 1.0\n"
        "Content-Type: text/html; charset=utf-8\n\n"
        f"<html><body><p>I agree.</p><table>{table}</table></body></html>\n"
    ).encode()
