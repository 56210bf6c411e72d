"""Filing readers' mail: storage first, links, effects, the listener, the commands."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from digest.feedback import store as feedback_store
from digest.feedback.bounds import DEFAULT_LIMITS, Limits
from digest.feedback.classify import Mailboxes
from digest.feedback.listen import start_listener
from digest.feedback.models import Feedback
from digest.feedback.parse import Parsed, parse
from digest.feedback.reports import Report
from digest.feedback.store import Filer, Incoming
from digest.feedback.text import html_to_text, safe_html, strip_reply
from digest.ledger import Delivery, DeliveryStatus
from digest.send.publish import freeze_source, plan_send
from subscribers.db import Database
from subscribers.models import Status
from tests.helpers import (
    READERS,
    Scenario,
    message_id,
    permanent_bounce,
    run,
    scenario_settings,
    send_scenario,
)
from tests.mailserver import free_port


@pytest.fixture
def scenario(db: Database, db_url: str, tmp_path: Path) -> Scenario:
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    return Scenario(db, settings, tmp_path)


def reply(number: int, text: str, *, own_id: str, subject: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = READERS[number - 1]
    message["To"] = "desk@news.example.org"
    message["Subject"] = subject or "Re: Executive Summary for November 2nd"
    message["Message-ID"] = own_id
    message["In-Reply-To"] = message_id(number)
    message.set_content(text)
    return message.as_bytes()


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

    def tripping_parse(
        raw: bytes,
        languages: tuple[str, ...] = ("en",),
        envelope_to: tuple[str, ...] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> Parsed:
        if b"trips the parser" in raw:
            raise UnicodeError("simulated parser bug")
        return parse(raw, languages, envelope_to, limits)

    monkeypatch.setattr(feedback_store, "parse", tripping_parse)
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


def test_soft_bounces_count_deliveries_not_reports(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """With soft_bounce_threshold 2, two reports on one delivery are one; a second
    edition's failure makes the reader bounced."""
    settings = scenario_settings(tmp_path, db_url, soft_bounce_threshold=2)
    send_scenario(db, settings, tmp_path)
    here = Scenario(db, settings, tmp_path)
    here.filer().file([Incoming(permanent_bounce(here, 6, "<b1@mx>"), "1")])
    here.filer().file([Incoming(permanent_bounce(here, 6, "<b2@mx>"), "2")])  # backup MX
    assert here.delivery(6).status is DeliveryStatus.failed
    assert here.status_of(READERS[5]) is Status.active
    second = freeze_source(db, settings, "2017-11-02", new_version=True).edition
    assert plan_send(db, settings, second).sender.run().sent == len(READERS)
    here.filer().file([Incoming(permanent_bounce(here, 16, "<b3@mx>"), "3")])
    assert here.status_of(READERS[5]) is Status.bounced
    rows = here.rows()
    assert [r.bounce_status for r in rows] == ["5.2.2"] * 3
    assert rows[-1].effect == f"delivery marked failed; {READERS[5]} marked bounced"


def test_one_hard_bounce_is_enough(scenario: Scenario) -> None:
    """A 5.1.1 "no such user" marks the reader bounced at once (bounce_threshold 1)."""
    scenario.filer().file([Incoming(permanent_bounce(scenario, 6, "<h@mx>", "5.1.1"), "h")])
    assert scenario.status_of(READERS[5]) is Status.bounced


def test_forged_reports_change_nobody(scenario: Scenario) -> None:
    """A bounce, a complaint or an unsubscribe that names no delivery of ours for certain
    (only an address anyone can write) is filed but changes no subscriber."""
    victim = READERS[3]
    bounce = (
        "From: MAILER-DAEMON@evil.example\nTo: desk@news.example.org\n"
        "Subject: Undelivered Mail\nMessage-ID: <f1@evil.example>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; evil.example\n\n"
        f"Final-Recipient: rfc822; {victim}\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    )
    complaint = (
        "From: fbl@evil.example\nTo: desk@news.example.org\nSubject: Abuse report\n"
        "Message-ID: <f2@evil.example>\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
        f"Original-Rcpt-To: <{victim}>\n"
        # a Message-ID of the right shape, but its tag is not signed by us
        "\n--b\nContent-Type: text/rfc822-headers\n\n"
        "Message-ID: <20171102.4.0123456789abcdef@news.example.org>\n\n--b--\n"
    )
    leave = (
        f"From: {victim}\nTo: unsubscribe@news.example.org\nSubject: unsubscribe\n"
        "Message-ID: <f3@evil.example>\n\nplease\n"
    )
    report = scenario.filer().file(
        [Incoming(m.encode(), f"forged-{n}") for n, m in enumerate((bounce, complaint, leave))]
    )
    assert report.kinds == {"bounce": 1, "complaint": 1, "unsubscribe": 1}
    assert scenario.status_of(victim) is Status.active
    assert scenario.delivery(4).status is DeliveryStatus.sent
    for row in scenario.rows():
        assert row.subscriber_id == 4 and row.effect is not None
        assert row.effect.startswith("no change")


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
        b"Message-ID: <" + "漢".encode() * 990 + b"@x>\n",  # past an index's row size
        b"Subject: nul \x00 byte\n",
        b"\x00",
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


def test_arbitrary_bytes_never_crash_filing(db: Database, db_url: str, tmp_path: Path) -> None:
    """Any bytes at all are stored and filed with a kind, on SQLite and PostgreSQL
    (which refuses NUL in text and long keys in an index); nothing raises or is lost."""
    settings_ = scenario_settings(tmp_path, db_url)
    filer = Filer(db, settings_)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
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


def test_nul_bytes_lone_surrogates_and_huge_ids_file_like_any_other(scenario: Scenario) -> None:
    """The cases PostgreSQL refuses outright are stored and filed, and the next mail too."""
    nul = b"From: x@example.org\nSubject: a \x00 b\nMessage-ID: <n@x>\n\nbody \x00 here\n"
    huge = b"From: y@example.org\nMessage-ID: <" + "漢".encode() * 990 + b"@x>\n\nhi\n"
    utf7 = (
        b"From: z@example.org\nSubject: =?utf-7?q?+2AA-?=\nMessage-ID: <u7@x>\n"
        b"Content-Type: text/plain; charset=utf-7\n\nlone +2AA- surrogate\n"
    )
    report = scenario.filer().file(
        [Incoming(nul, "nul"), Incoming(huge, "huge"), Incoming(utf7, "utf-7")]
    )
    assert report.stored == 3 and not report.not_stored and report.unparsed == 0
    later = scenario.filer().file([Incoming(reply(1, "Still works.", own_id="<ok@x>"), "ok")])
    assert later.stored == 1
    rows = scenario.rows()
    assert rows[0].subject == "a  b" and rows[0].text == "body  here"
    assert rows[1].message_id is None  # not a usable Message-ID: deduplicated by hash only
    assert rows[2].text is not None and rows[2].text.startswith("lone ")
    assert rows[3].kind == "reply"


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
            raw = b"Received: from x by y; Mon, 1 Jan 1990 00:00:00 +0000\n" + reply(
                2, "Sent straight to your MX.", own_id="<mx@example.com>"
            )
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
    assert row.received_at.year >= 2026  # the listener's own time, not the sender's header


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
    (maildir / "cur" / "2.eml").write_bytes(permanent_bounce(desk, 6, "<m2@x>", "5.1.1"))
    vacation = reply(5, "Away until Monday.", own_id="<m3@x>", subject="Out of office")
    (maildir / "new" / "3.eml").write_bytes(b"Auto-Submitted: auto-replied\n" + vacation)
    code, out, _ = run(["feedback", "import", str(maildir)], capsys)
    assert code == 0 and "farid.haddad" in out
    assert "3 messages: 3 stored, 0 already stored; filed as 1 auto reply, 1 bounce, 1 reply" in out
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
    assert "(and 1 auto reply)" in out

    (desk.tmp / "4.eml").write_bytes(reply(2, "Second answer.", own_id="<m4@x>"))
    code, out, _ = run(["feedback", "import", str(desk.tmp / "4.eml")], capsys)
    assert code == 0 and "1 message: 1 stored, 0 already stored; filed as 1 reply" in out
    code, _, err = run(["feedback", "export", str(target)], capsys)
    assert code == 0 and "exported 4 messages" in err


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


def test_show_never_sends_a_message_s_terminal_escapes(
    desk: Scenario, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An escape sequence in a subject or body is printed visibly, never run by the terminal."""
    raw = reply(2, "Body with \x1b[2J a clear-screen.", own_id="<esc@x>")
    raw = raw.replace(b"Subject: Re:", b"Subject: \x1b]0;pwned\x07[/bold][link=https://x]Re:")
    desk.filer().file([Incoming(raw, "esc")])
    for args in (["feedback", "show", "1"], ["feedback", "list"]):
        code, out, _ = run(args, capsys)
        assert code == 0 and "\x1b" not in out and "\x07" not in out
    code, out, _ = run(["feedback", "show", "1"], capsys)
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out
    monkeypatch.setenv("COLUMNS", "400")  # one line per row
    code, out, _ = run(["feedback", "list"], capsys)
    assert code == 0 and "[/bold][link=https://x]" in out  # shown as typed, not markup


def test_the_listener_takes_every_address_of_ours_and_no_other(scenario: Scenario) -> None:
    """Contact, unsubscribe(+token), bounces(+token) and feedback.addresses; not others."""
    port = free_port()
    controller = start_listener(
        scenario.filer(),
        Mailboxes.from_settings(scenario.settings),
        ["letters@news.example.org"],
        "127.0.0.1",
        port,
        50_000,
    )
    ours = [
        "desk@news.example.org",
        "Unsubscribe+8-6bc451305d874863@news.example.org",
        "bounces@news.example.org",
        "bounces+6-anything@news.example.org",
        "letters@news.example.org",
    ]
    theirs = ["desk@elsewhere.example", "unsubscribe@elsewhere.example", "someone@news.example.org"]
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            client.mail("reader@example.org")
            codes = {address: client.rcpt(address)[0] for address in ours + theirs}
            client.rset()
    finally:
        controller.stop()
    assert {a: c for a, c in codes.items() if a in ours} == dict.fromkeys(ours, 250)
    assert {a: c for a, c in codes.items() if a in theirs} == dict.fromkeys(theirs, 550)


def test_only_no_such_address_codes_are_hard() -> None:
    """5.1.7/5.1.8 blame our sender address; they must not bounce a reader at once."""
    for status, hard in (("5.1.1", True), ("5.1.10", True), ("5.1.7", False), ("5.2.2", False)):
        assert Report(kind="bounce", permanent=("a@b.c",), status=status).is_hard is hard


def test_an_unsigned_stored_message_id_links_but_does_not_act(scenario: Scenario) -> None:
    """A delivery stored with an old, guessable Message-ID can't be used to unsubscribe."""
    old = "<20171102.5.c0ffee0123456789@news.example.org>"
    with scenario.db.transaction() as session:
        session.execute(update(Delivery).where(Delivery.id == 5).values(message_id=old))
    forged = (
        f"From: prankster@example.org\nTo: unsubscribe@news.example.org\nSubject: unsubscribe\n"
        f"Message-ID: <p@x>\nIn-Reply-To: {old}\n\nbye\n"
    ).encode()
    scenario.filer().file([Incoming(forged, "forged")])
    [row] = scenario.rows()
    assert (row.kind, row.delivery_id, row.linked_by) == ("unsubscribe", 5, "in-reply-to, unsigned")
    assert scenario.status_of(READERS[4]) is Status.active
