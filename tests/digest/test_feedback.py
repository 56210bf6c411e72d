"""Filing readers' mail: storage first, links, effects, the listener, the commands."""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from digest.feedback import store as feedback_store
from digest.feedback.classify import Mailboxes
from digest.feedback.listen import start_listener
from digest.feedback.models import Feedback
from digest.feedback.parse import parse
from digest.feedback.store import Filer, Incoming
from digest.feedback.text import html_to_text, safe_html, strip_reply
from digest.ledger import Delivery, DeliveryStatus
from digest.settings import Settings
from subscribers import audience
from subscribers.db import Database, open_database
from subscribers.models import Status
from tests.digest.feedback_scenario import READERS, SALT, scenario_settings, send_scenario
from tests.digest.test_cli import run
from tests.mailserver import free_port


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


@pytest.fixture
def scenario(db: Database, db_url: str, tmp_path: Path) -> Scenario:
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    return Scenario(db, settings, tmp_path)


def message_id(number: int) -> str:
    return f"<20171102.{number}.{SALT}@news.example.org>"


def reply(number: int, text: str, *, own_id: str, subject: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = READERS[number - 1]
    message["To"] = "desk@news.example.org"
    message["Subject"] = subject or "Re: Executive Summary for November 2nd"
    message["Message-ID"] = own_id
    message["In-Reply-To"] = message_id(number)
    message.set_content(text)
    return message.as_bytes()


def permanent_bounce(number: int, own_id: str) -> bytes:
    address = READERS[number - 1]
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: bounces@news.example.org\nMessage-ID: {own_id}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe mail system could not deliver it.\n\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.2.2\n"
        "Diagnostic-Code: smtp; 552 5.2.2 mailbox full\n\n"
        "--b\nContent-Type: text/rfc822-headers\n\n"
        f"Message-ID: {message_id(number)}\nSubject: Executive Summary for November 2nd\n\n"
        "--b--\n"
    ).encode()


def test_raw_is_stored_once_even_when_redelivered_with_more_headers(scenario: Scenario) -> None:
    """The same Message-ID with one more Received: header is a duplicate, not a new row."""
    raw = reply(1, "Thanks for the harbour piece.", own_id="<r1@mail.example.com>")
    again = b"Received: from relay.example.com by mx.news.example.org; Thu, 2 Nov 2017\n" + raw
    first = scenario.filer().file([Incoming(raw, "a")])
    second = scenario.filer().file([Incoming(again, "b"), Incoming(raw, "c")])
    assert (first.stored, second.stored, second.duplicates) == (1, 0, 2)
    [row] = scenario.rows()
    assert row.raw == raw and row.kind == "reply" and row.delivery_id == 1


def test_a_message_the_parser_fails_on_is_kept_raw_and_the_batch_goes_on(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser failure files that one message as other with the reason; the next is filed."""
    broken = reply(2, "This one trips the parser.", own_id="<trip@example.com>")
    fine = reply(3, "This one is fine.", own_id="<fine@example.com>")
    real_parse = feedback_store.parse

    def parse(raw: bytes, *args: object) -> object:
        if b"trips the parser" in raw:
            raise UnicodeError("simulated parser bug")
        return real_parse(raw, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(feedback_store, "parse", parse)
    report = scenario.filer().file([Incoming(broken, "x"), Incoming(fine, "y")])
    assert (report.stored, report.unparsed) == (2, 1)
    first, second = scenario.rows()
    assert first.raw == broken and first.kind == "other"
    assert first.problem is not None and "simulated parser bug" in first.problem
    assert second.kind == "reply" and second.text == "This one is fine."


def test_rows_stored_before_a_crash_are_parsed_on_the_next_run(scenario: Scenario) -> None:
    """Raw rows with no kind (a crash came between storing and parsing) are filed later."""
    filer = scenario.filer()
    report = feedback_store.FilingReport()
    filer.store([Incoming(reply(4, "Stored, then the power went.", own_id="<p@x>"), "z")], report)
    assert [row.kind for row in scenario.rows()] == [None]
    later = scenario.filer().file([])
    assert later.kinds == {"reply": 1}
    [row] = scenario.rows()
    assert row.kind == "reply" and row.subscriber_id == 4


def test_bounce_threshold_counts_permanent_bounces(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """With a threshold of 2 the first permanent bounce fails the delivery only."""
    settings = scenario_settings(tmp_path, db_url, bounce_threshold=2)
    send_scenario(db, settings, tmp_path)
    here = Scenario(db, settings, tmp_path)
    Filer(db, settings).file([Incoming(permanent_bounce(6, "<b1@mx>"), "1")])
    assert here.delivery(6).status is DeliveryStatus.failed
    assert here.status_of(READERS[5]) is Status.active
    Filer(db, settings).file([Incoming(permanent_bounce(6, "<b2@mx>"), "2")])
    assert here.status_of(READERS[5]) is Status.bounced
    first, second = here.rows()
    assert first.permanent and first.detail is not None and "5.2.2" in first.detail
    assert second.effect == f"{READERS[5]} marked bounced"


def test_unsubscribe_by_mail_needs_our_address(scenario: Scenario) -> None:
    """Mail to unsubscribe+TOKEN@ makes that reader leave; other mail changes nobody."""
    token = scenario.filer().signer.delivery_token(8)
    message = EmailMessage()
    message["From"] = "someone.else@example.org"  # a forwarding address: the token decides
    message["To"] = f"unsubscribe+{token}@news.example.org"
    message["Subject"] = "unsubscribe"
    message.set_content("")
    scenario.filer().file([Incoming(message.as_bytes(), "u")])
    assert scenario.status_of(READERS[7]) is Status.unsubscribed
    [row] = scenario.rows()
    assert (row.kind, row.linked_by, row.subscriber_id) == ("unsubscribe", "unsubscribe", 8)


def test_reply_text_loses_quotes_and_signature() -> None:
    """The stripped text is the reader's words only; HTML quotes become > lines first."""
    text = (
        "Loved the ferry explainer.\n\nBest,\nMo\n-- \nMo Rahman\nHarbour Users\n\n"
        "On Thu, 2 Nov 2017 at 07:00, The Morning Ledger <desk@news.example.org> wrote:\n"
        "> Executive Summary for November 2nd\n"
    )
    stripped = strip_reply(text)
    assert "Loved the ferry explainer." in stripped
    assert "Harbour Users" not in stripped and "Executive Summary" not in stripped
    html = "<div>Yes!<br>Agreed.</div><blockquote>quoted <b>original</b></blockquote>"
    assert html_to_text(html) == "Yes!\nAgreed.\n\n> quoted original"


def test_html_from_a_message_is_sanitised_before_it_is_shown() -> None:
    """Scripts, event handlers and remote images are gone; plain formatting stays."""
    dirty = (
        '<p onclick="steal()">Hi <b>there</b><script>alert(1)</script>'
        '<img src="https://tracker.example.com/p.gif"><a href="javascript:x()">x</a></p>'
    )
    clean = safe_html(dirty)
    assert "<b>there</b>" in clean
    for bad in ("script", "onclick", "<img", "tracker", "javascript:"):
        assert bad not in clean


_HEADERS = st.sampled_from(
    [
        b"From: ",
        b"To: ",
        b"Subject: =?utf-8?q?",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=",
        b"Content-Type: multipart/mixed; boundary=",
        b"Content-Type: text/html; charset=",
        b"Content-Transfer-Encoding: base64",
        b"Message-ID: <",
        b"In-Reply-To: <20171102.1.",
        b"Date: ",
        b"--",
        b"\r\n",
        b"\n\n",
    ]
)
_MESSAGES = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.one_of(_HEADERS, st.binary(max_size=60)), max_size=40).map(b"".join),
)


def test_arbitrary_bytes_never_crash_filing(tmp_path: Path) -> None:
    """Any bytes at all are stored and filed with a kind; nothing raises, nothing is lost."""
    settings_ = scenario_settings(tmp_path, f"sqlite:///{tmp_path / 'fuzz.db'}")
    with open_database(settings_.database_url) as db:
        filer = Filer(db, settings_)

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(raw=_MESSAGES)
        def file_it(raw: bytes) -> None:
            report = filer.file([Incoming(raw, "fuzz")])
            assert report.stored + report.duplicates == 1 and not report.not_stored
            with db.transaction() as session:
                unfiled = session.scalar(
                    select(func.count()).select_from(Feedback).where(Feedback.kind.is_(None))
                )
            assert unfiled == 0

        file_it()


def test_the_listener_files_a_reply_sent_by_smtplib(scenario: Scenario) -> None:
    """Our addresses are accepted and filed; any other recipient and oversize mail are refused."""
    port = free_port()
    controller = start_listener(
        scenario.filer(),
        Mailboxes.from_settings(scenario.settings),
        [],
        "127.0.0.1",
        port,
        50_000,
    )
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            raw = reply(2, "Sent straight to your MX.", own_id="<mx@example.com>")
            refused = client.sendmail(
                READERS[1], ["desk@news.example.org"], raw.replace(b"\n", b"\r\n")
            )
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(READERS[1], ["postmaster@elsewhere.example"], raw)
            # smtplib announces the size, so the refusal comes at MAIL FROM
            with pytest.raises(smtplib.SMTPSenderRefused) as too_big:
                client.sendmail(
                    READERS[1], ["desk@news.example.org"], raw + b"x" * 60_000 + b"\r\n"
                )
            assert too_big.value.smtp_code == 552
    finally:
        controller.stop()
    [row] = scenario.rows()
    assert (row.kind, row.delivery_id, row.origin) == ("reply", 2, "smtp")
    assert row.text == "Sent straight to your MX." and row.envelope_to == "desk@news.example.org"


@pytest.fixture
def desk(scenario: Scenario, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    monkeypatch.setenv("DIGEST_DATABASE_URL", scenario.settings.database_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "feedback-corpus-secret-0001")
    monkeypatch.setenv("DIGEST_EDITIONS_DIR", str(scenario.tmp / "editions"))
    return scenario


def test_commands_import_list_show_export_and_status(
    desk: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """Import a Maildir, then list (JSON keys), show, export and per-edition counts."""
    maildir = desk.tmp / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(reply(1, "First answer.", own_id="<m1@x>"))
    (maildir / "cur" / "2.eml").write_bytes(permanent_bounce(6, "<m2@x>"))
    vacation = reply(5, "Away until Monday.", own_id="<m3@x>", subject="Out of office")
    (maildir / "new" / "3.eml").write_bytes(b"Auto-Submitted: auto-replied\n" + vacation)
    code, out, _ = run(["feedback", "import", str(maildir)], capsys)
    assert code == 0 and "3 messages: 3 stored" in out and "farid.haddad" in out
    code, out, _ = run(["feedback", "import", str(maildir)], capsys)
    assert code == 0 and "0 stored, 3 already stored" in out

    code, out, _ = run(["feedback", "list", "--format", "json"], capsys)
    listed = json.loads(out)
    assert [item["kind"] for item in listed] == ["bounce", "reply"]  # newest first, no auto
    assert set(listed[1]) >= {
        "id",
        "received_at",
        "from",
        "subject",
        "kind",
        "edition",
        "subscriber",
        "text",
    }
    assert listed[1]["edition"] == "2017-11-02" and listed[1]["subscriber"] == READERS[0]
    assert listed[1]["text"] == "First answer."
    code, out, _ = run(["feedback", "list", "--all", "--format", "json"], capsys)
    assert len(json.loads(out)) == 3
    code, out, _ = run(["feedback", "list", "--kind", "auto_reply", "--format", "json"], capsys)
    assert [item["from"] for item in json.loads(out)] == [READERS[4]]

    code, out, _ = run(["feedback", "show", str(listed[1]["id"])], capsys)
    assert code == 0 and "First answer." in out and "linked by in-reply-to" in out
    code, _, err = run(["feedback", "show", "999"], capsys)
    assert code == 1 and "no filed message has the id 999" in err

    target = desk.tmp / "feedback.csv"
    code, _, err = run(["feedback", "export", str(target)], capsys)
    assert code == 0 and "exported 3 messages" in err
    assert target.read_text(encoding="utf-8").splitlines()[0] == (
        "id,received_at,from,subject,kind,edition,subscriber,text"
    )

    code, out, _ = run(["status", "2017-11-02", "--format", "json"], capsys)
    counts = json.loads(out)
    assert counts["feedback"]["reply"] == 1 and counts["feedback"]["bounce"] == 1
    assert counts["counts"]["failed"] == 1  # the permanent bounce failed its delivery
    code, out, _ = run(["status", "2017-11-02"], capsys)
    assert "readers' mail: 1 reply, 0 suggestions, 1 bounce, 0 complaints" in out


def test_import_of_a_missing_path_is_a_clear_error(
    desk: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["feedback", "import", str(desk.tmp / "nowhere.mbox")], capsys)
    assert code == 1 and "does not exist" in err


@settings(max_examples=300, deadline=None)
@given(raw=_MESSAGES)
def test_the_parser_itself_survives_arbitrary_bytes(raw: bytes) -> None:
    """parse() returns values for any bytes; filing's safety net is for bugs, not for input."""
    parsed = parse(raw, ("en", "de"))
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)
    assert parsed.report.kind in (None, "bounce", "complaint")
