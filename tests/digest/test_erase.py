"""Erase means erase; show shows everything: one person across every table.

A reader of the feedback scenario gets a name, replies, bounces and is named by a
stranger's mail; then ``show`` must list all of it and ``erase`` must leave nothing
that names them, in any table, on SQLite and PostgreSQL, nor in the SQLite file
and its write-ahead log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, update

from digest.cli.app import main
from digest.database import open_database
from digest.feedback import person
from digest.feedback.models import Feedback
from digest.feedback.store import Filer, Incoming
from digest.ledger import Delivery, DeliveryStatus
from digest.settings import Settings
from subscribers.addresses import suppression_hash
from subscribers.db import Database
from subscribers.errors import NotSubscribedError
from subscribers.models import Base, Consent, StatusChange, Subscriber, Suppression
from tests.helpers import READERS, message_id, scenario_settings, send_scenario

ADDRESS = READERS[0]  # ana.lima@gmail.com, delivery 1
TYPED = "Ana.Lima@Gmail.com"
NAME = "Anastasia Quillfeather"
PHRASE = "zebra-striped lighthouse"
OTHER_PHRASE = "keep this other reader's note"
#: What must be gone after the erase, wherever it was stored.
TRACES = (ADDRESS, NAME, PHRASE)
NOW = datetime(2017, 11, 3, 9, 0, tzinfo=UTC)


def _reply(number: int, text: str, own_id: str, name: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{READERS[number - 1]}>" if name else READERS[number - 1]
    message["To"] = "desk@news.example.org"
    message["Subject"] = "Re: Executive Summary for November 2nd"
    message["Message-ID"] = own_id
    message["In-Reply-To"] = message_id(number)
    message.set_content(text)
    return message.as_bytes()


def _hard_bounce(filer: Filer) -> bytes:
    """A DSN to delivery 1's VERP address whose diagnostic names the address."""
    token = filer.signer.delivery_token(1)
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: bounces+{token}@news.example.org\nMessage-ID: <dsn-1@mx.example.net>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe mail system could not deliver it.\n\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {ADDRESS}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{ADDRESS}>: Recipient address rejected\n\n--b--\n"
    ).encode()


def _stranger() -> bytes:
    """Mail from someone else that names the address (in other letter case) in its body."""
    message = EmailMessage()
    message["From"] = "stranger@example.com"
    message["To"] = "desk@news.example.org"
    message["Subject"] = "a friend"
    message["Message-ID"] = "<stranger-1@example.com>"
    message.set_content(f"Please send it to my friend {ADDRESS.upper()} too.")
    return message.as_bytes()


def file_mail_from_reader_one(db: Database, settings: Settings, tmp_path: Path) -> None:
    """The scenario sent, then reader 1 named, replying and bouncing; reader 2 replying."""
    send_scenario(db, settings, tmp_path)
    with db.transaction() as session:
        session.execute(update(Subscriber).where(Subscriber.id == 1).values(name=NAME))
    filer = Filer(db, settings, lambda: NOW)
    report = filer.file(
        [
            Incoming(_reply(1, f"I loved the {PHRASE} piece.", "<r1@gmail.com>", NAME), "t1"),
            Incoming(_reply(2, f"Thanks, {OTHER_PHRASE}.", "<r2@outlook.com>"), "t2"),
            Incoming(_hard_bounce(filer), "t3"),
            Incoming(_stranger(), "t4"),
        ]
    )
    assert report.stored == 4 and not report.unparsed
    assert any(ADDRESS in effect for effect in report.effects)  # "… marked bounced"


@pytest.fixture
def filed(db: Database, db_url: str, tmp_path: Path) -> Database:
    file_mail_from_reader_one(db, scenario_settings(tmp_path, db_url), tmp_path)
    return db


def _everything(db: Database) -> str:
    """Every value of every row of every table, as lower-cased text."""
    parts: list[str] = []
    with db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for value in row:
                    parts.append(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
    return "\n".join(parts).lower()


def test_show_lists_their_mail_and_deliveries(filed: Database) -> None:
    """The subject-access answer holds the reply, the bounce, the stranger's mail and the delivery."""
    with filed.transaction() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.id == 1)).one()
        data = person.person_data(session, subscriber)
    assert data["name"] == NAME and data["status"] == "bounced"
    mail = {item["kind"]: item for item in data["mail"]}
    assert len(data["mail"]) == 3 and set(mail) == {"reply", "bounce", "other"}
    assert PHRASE in mail["reply"]["text"] and mail["reply"]["edition"] == "2017-11-02"
    assert mail["reply"]["received_at"] and mail["reply"]["subject"].startswith("Re: ")
    assert ADDRESS in mail["bounce"]["effect"]
    assert OTHER_PHRASE not in json.dumps(data)
    (delivery,) = data["deliveries"]
    assert delivery["edition"] == "2017-11-02" and delivery["status"] == "failed"
    assert delivery["message_id"] == message_id(1) and delivery["sent_at"]
    assert ADDRESS in delivery["reply"]


def test_erase_leaves_nothing_that_names_them_in_any_table(filed: Database) -> None:
    """After the erase no table holds the address, name or reply; counts and others stay."""
    assert all(trace.lower() in _everything(filed) for trace in TRACES)  # the check can fail
    erased = person.erase(filed, TYPED, NOW)
    assert (erased.mail, erased.deliveries, erased.log_cleared) == (3, 1, True)
    everything = _everything(filed)
    for trace in TRACES:
        assert trace.lower() not in everything, trace
    assert OTHER_PHRASE in everything and READERS[1] in everything
    with filed.transaction() as session:
        (suppression,) = session.scalars(select(Suppression)).all()
        assert suppression.email_hash == suppression_hash(ADDRESS)
        for table in (Consent, StatusChange):
            orphans = select(func.count()).select_from(table).where(table.subscriber_id == 1)
            assert session.scalar(orphans) == 0
        assert [f.from_email for f in session.scalars(select(Feedback))] == [READERS[1]]
        statuses = list(session.scalars(select(Delivery.status).order_by(Delivery.id)))
        assert statuses == [DeliveryStatus.failed] + [DeliveryStatus.sent] * 9
        anonymous = session.get(Delivery, 1)
        assert anonymous is not None and anonymous.subscriber_id is None
        assert anonymous.message_id is None and anonymous.reply is None
        assert anonymous.sent_at is not None
    with filed.transaction() as session, pytest.raises(NotSubscribedError):
        person.erase_in(session, ADDRESS, NOW)


def test_sqlite_file_and_write_ahead_log_hold_no_trace_after_erase(tmp_path: Path) -> None:
    """The bytes of the database file and its -wal file name the person before, not after."""
    path = tmp_path / "digest.db"
    url = f"sqlite:///{path}"
    db = open_database(url)
    # as where SQLite is built with secure delete off (Debian's is on): before the database's
    # own per-connection settings, so those must turn it on for every write, not just the erase
    event.listen(
        db.engine,
        "connect",
        lambda dbapi, _: dbapi.execute("PRAGMA secure_delete = OFF"),
        insert=True,
    )
    db.engine.dispose()
    try:
        file_mail_from_reader_one(db, scenario_settings(tmp_path, url), tmp_path)

        def on_disk() -> bytes:
            wal = path.with_name(path.name + "-wal")
            return (path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).lower()

        before = on_disk()
        assert all(trace.lower().encode() in before for trace in TRACES)
        assert person.erase(db, TYPED, NOW).log_cleared
        after = on_disk()
        for trace in TRACES:
            assert trace.lower().encode() not in after, trace
        assert OTHER_PHRASE.encode() in after  # the other reader's mail is still there
    finally:
        db.close()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        main(args)
    out, err = capsys.readouterr()
    return (caught.value.code if isinstance(caught.value.code, int) else 0), out, err


def test_show_and_erase_commands(
    filed: Database,
    db_url: str,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """show prints mail and deliveries as JSON and as tables; erase says what it removed."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    code, out, _ = _run(["subscribers", "show", TYPED], capsys)
    data = json.loads(out)
    assert code == 0 and len(data["mail"]) == 3 and len(data["deliveries"]) == 1
    code, out, _ = _run(["subscribers", "show", TYPED, "--format", "table"], capsys)
    assert code == 0
    for expected in (NAME, "mail (3)", PHRASE, "deliveries (1)", "failed", message_id(1)):
        assert expected in out, expected
    code, out, _ = _run(["subscribers", "erase", TYPED, "--yes"], capsys)
    assert code == 0 and "erased; a hashed suppression entry blocks re-adding" in out
    assert "3 filed messages from or about them deleted" in out
    assert "1 delivery row kept without anything that names them" in out
    code, _, err = _run(["subscribers", "show", TYPED, "--format", "table"], capsys)
    assert code == 1 and "no subscriber with the address" in err
