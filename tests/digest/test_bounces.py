"""One bounce policy: refusals at send time and delivery reports are judged and counted alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from digest.errors import TransportError
from digest.feedback.reports import Report
from digest.feedback.store import Incoming
from digest.ledger import DeliveryStatus
from digest.send.bounces import Bounce, bounce_of, classify, classify_refusal, classify_reply
from digest.send.publish import freeze_source, plan_send
from digest.send.smtp_codes import enhanced_status
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.models import Status
from tests.helpers import (
    READERS,
    Clock,
    Scenario,
    permanent_bounce,
    scenario_settings,
    send_scenario,
)
from tests.mailserver import SMTPServer


@pytest.mark.parametrize(
    ("code", "reply", "expected"),
    [
        (550, "5.1.1 <a@example.org>: Recipient address rejected: User unknown", Bounce.hard),
        (550, "5.1.10 Recipient domain has a null MX", Bounce.hard),
        (550, "5.1.2 Host or domain name not found", Bounce.hard),
        (552, "5.2.2 Mailbox full", Bounce.soft),
        (554, "5.7.1 Message rejected by policy", Bounce.soft),
        (550, "No such user here", Bounce.soft),  # no enhanced code: permanent, not certain
        (550, "relay 10.5.1.1 said: 5.2.2 over quota", Bounce.soft),  # an IP is no status
        (553, "5.1.8 Sender address domain not found", None),  # our fault, not the reader's
        (550, "5.1.7 Bad sender mailbox syntax", None),
        (451, "4.7.1 Greylisted, try again later", None),
        (452, "4.2.2 Mailbox full for now", None),
        (421, "4.3.0 closing", None),
        (250, "2.0.0 OK", None),
        (None, "", None),
    ],
)
def test_smtp_replies_are_classified_by_one_table(
    code: int | None, reply: str, expected: Bounce | None
) -> None:
    """5xx with a no-such-address status is hard, other 5xx soft, 4xx and our own faults none."""
    assert classify_reply(code, reply) is expected


@pytest.mark.parametrize(
    ("status", "permanent", "expected"),
    [
        ("5.1.1", True, Bounce.hard),
        ("5.1.6", True, Bounce.hard),
        ("5.2.2", True, Bounce.soft),
        ("5.7.1", True, Bounce.soft),
        (None, True, Bounce.soft),
        ("4.4.7", True, Bounce.soft),  # the remote MTA gave up after retrying
        ("5.1.8", True, None),
        ("5.1.1", False, None),
        ("4.2.2", False, None),
    ],
)
def test_report_statuses_follow_the_same_table(
    status: str | None, permanent: bool, expected: Bounce | None
) -> None:
    """A delivery report's status and permanence give the same answer as a refusal would."""
    assert classify(status, permanent=permanent) is expected
    who = ("a@example.org",)
    report = Report(kind="bounce", permanent=who if permanent else (), temporary=who, status=status)
    assert report.is_hard is (expected is Bounce.hard)


def test_only_the_recipients_refusal_is_their_bounce() -> None:
    """A refused MAIL FROM blames our sender address: no reader's bounce, whatever the code."""
    words = "5.1.1 <a@example.org>: User unknown"
    for refused, expected in (
        ("recipient", Bounce.hard),
        ("message", Bounce.hard),
        ("sender", None),
    ):
        error = TransportError("refused", code=550, permanent=True, refused=refused, reply=words)
        assert classify_refusal(error) is expected
    assert classify_refusal(TransportError("cannot connect")) is None


def test_enhanced_status_is_not_read_out_of_an_address() -> None:
    """``10.5.1.1`` holds no status code; a real one is found after it."""
    assert enhanced_status("host 10.5.1.1 said 5.2.2 full") == "5.2.2"
    assert enhanced_status("host 10.5.1.1") is None
    assert bounce_of("soft bounce: 5.2.2 full") is Bounce.soft and bounce_of("250 ok") is None


def test_a_refusal_at_send_time_counts_toward_the_soft_threshold_like_a_report(
    db: Database, db_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """soft_bounce_threshold 2: a report on one edition and a 554 refusal on the next bounce
    the reader; before, the refusal never counted."""
    settings = scenario_settings(tmp_path, db_url, soft_bounce_threshold=2)
    send_scenario(db, settings, tmp_path)
    here = Scenario(db, settings, tmp_path)
    here.filer().file([Incoming(permanent_bounce(here, 6, "<b1@mx>"), "1")])
    assert here.delivery(6).status is DeliveryStatus.failed
    assert here.status_of(READERS[5]) is Status.active
    over_smtp = settings.model_copy(update={"delivery_url": SecretStr(smtp_server.url)})
    smtp_server.inbox.reject.add(READERS[5])  # 554 5.7.1 at RCPT TO
    second = freeze_source(db, over_smtp, "2017-11-02", new_version=True).edition
    result = plan_send(db, over_smtp, second).sender.run()
    assert result.failed == 1 and result.sent == len(READERS) - 1
    refused = here.delivery(16)
    assert refused.status is DeliveryStatus.failed and bounce_of(refused.reply) is Bounce.soft
    assert "554 5.7.1" in (refused.reply or "")
    assert here.status_of(READERS[5]) is Status.bounced


def test_a_hard_refusal_at_send_time_respects_the_hard_threshold(
    db: Database, db_url: str, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """bounce_threshold 2: one "no such user" at RCPT TO is recorded, not yet a bounced reader;
    a report of a second edition's delivery makes two."""
    settings = scenario_settings(tmp_path, db_url, bounce_threshold=2)
    settings = settings.model_copy(update={"delivery_url": SecretStr(smtp_server.url)})
    path = tmp_path / "readers.csv"
    path.write_text("email\n" + "".join(f"{e}\n" for e in READERS), encoding="utf-8")
    assert import_csv(db, path, Clock(), confirmed=True).rejected == 0
    smtp_server.inbox.refuse.add(READERS[5])  # 550 5.1.1 at RCPT TO
    first = freeze_source(db, settings, "2017-11-02").edition
    assert plan_send(db, settings, first).sender.run().failed == 1
    here = Scenario(db, settings, tmp_path)
    assert bounce_of(here.delivery(6).reply) is Bounce.hard
    assert here.status_of(READERS[5]) is Status.active
    smtp_server.inbox.refuse.clear()
    second = freeze_source(db, settings, "2017-11-02", new_version=True).edition
    assert plan_send(db, settings, second).sender.run().sent == len(READERS)
    here.filer().file([Incoming(permanent_bounce(here, 16, "<h2@mx>", "5.1.1"), "h2")])
    assert here.status_of(READERS[5]) is Status.bounced
