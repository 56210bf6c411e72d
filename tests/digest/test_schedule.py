"""Scheduling: times in the publication's zone, the job store, and the jobs themselves."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from digest import ledger
from digest.edition.model import Read
from digest.errors import ScheduleError
from digest.ledger import FrozenEdition
from digest.schedule import jobs
from digest.schedule.scheduler import daily_trigger, parse_at
from digest.settings import ScheduleSettings
from subscribers.db import Database
from tests.helpers import add_subscribers, run
from tests.mailserver import SMTPServer, free_port, text_part
from tests.webserver import Site

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def test_times_are_read_in_the_publication_zone() -> None:
    """Local times follow the zone's DST; the skipped hour, the past and bare ISO are refused."""
    assert parse_at("2027-03-29 07:00", LONDON, NOW) == datetime(2027, 3, 29, 6, 0, tzinfo=UTC)
    assert parse_at("2027-03-27 07:00", LONDON, NOW) == datetime(2027, 3, 27, 7, 0, tzinfo=UTC)
    assert parse_at("2027-03-27T07:00:00+02:00", LONDON, NOW) == datetime(
        2027, 3, 27, 5, 0, tzinfo=UTC
    )
    with pytest.raises(ScheduleError, match="does not exist in Europe/London"):
        parse_at("2027-03-28 01:30", LONDON, NOW)
    with pytest.raises(ScheduleError, match="is in the past"):
        parse_at("2027-02-28 07:00", LONDON, NOW)
    with pytest.raises(ScheduleError, match="has no UTC offset"):
        parse_at("2027-03-27T07:00:00", LONDON, NOW)
    with pytest.raises(ScheduleError, match="is not a time"):
        parse_at("tomorrow at seven", LONDON, NOW)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # spring forward (28 March 2027): 07:00 is 07:00 GMT, then 06:00 UTC in BST
        (datetime(2027, 3, 27, 8, 0, tzinfo=UTC), datetime(2027, 3, 28, 6, 0, tzinfo=UTC)),
        (datetime(2027, 3, 26, 8, 0, tzinfo=UTC), datetime(2027, 3, 27, 7, 0, tzinfo=UTC)),
        # fall back (31 October 2027)
        (datetime(2027, 10, 30, 7, 0, tzinfo=UTC), datetime(2027, 10, 31, 7, 0, tzinfo=UTC)),
        (datetime(2027, 10, 29, 7, 0, tzinfo=UTC), datetime(2027, 10, 30, 6, 0, tzinfo=UTC)),
    ],
)
def test_daily_job_fires_at_seven_local_across_dst(after: datetime, expected: datetime) -> None:
    """The daily trigger's next time is 07:00 on the London clock, whatever the offset."""
    trigger = daily_trigger(ScheduleSettings(daily_at="07:00", timezone="Europe/London"))
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None and fire == expected
    assert fire.astimezone(LONDON).strftime("%H:%M") == "07:00"


@pytest.fixture
def newsroom(desk: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The send tests' desk, with a secret and an editor to tell."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "schedule-tests-secret-0123")
    monkeypatch.setenv("DIGEST_SCHEDULE__EDITORS", '["desk@news.example.org"]')
    return desk


def test_schedule_list_move_cancel(newsroom: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Jobs are written to the database, listed as JSON, moved and cancelled; errors are clear."""
    with time_machine.travel(datetime(2017, 11, 1, 12, 0, tzinfo=UTC), tick=True):
        code, out, _ = run(["schedule", "2017-11-02", "--at", "2017-11-02 07:00"], capsys)
        assert code == 0 and "job send-2017-11-02" in out and "2017-11-02 07:00 GMT" in out
        code, _, err = run(["schedule", "2017-11-02", "--at", "2017-11-02 08:00"], capsys)
        assert code == 1 and "already scheduled" in err
        code, out, _ = run(["schedule", "list", "--format", "json"], capsys)
        [job] = json.loads(out)
        assert job == {
            "id": "send-2017-11-02",
            "what": "send the edition of 2017-11-02",
            "edition": "2017-11-02",
            "next_run_time": "2017-11-02T07:00:00+00:00",
            "state": "scheduled",
        }
        code, out, _ = run(
            ["schedule", "move", "send-2017-11-02", "--at", "2017-11-02T06:30:00+00:00"], capsys
        )
        assert code == 0
        code, out, _ = run(["schedule", "list", "--format", "json"], capsys)
        assert json.loads(out)[0]["next_run_time"] == "2017-11-02T06:30:00+00:00"
        code, out, _ = run(["schedule", "cancel", "send-2017-11-02"], capsys)
        assert (
            code == 0 and json.loads(run(["schedule", "list", "--format", "json"], capsys)[1]) == []
        )
        code, _, err = run(["schedule", "cancel", "send-2017-11-02"], capsys)
        assert code == 1 and "no scheduled job" in err
        (newsroom / "editions" / "2017-11-03.md").write_text(
            "---\ndate: 2017-11-03\n---\nno heading\n"
        )
        code, _, err = run(["schedule", "2017-11-03", "--at", "2017-11-03 07:00"], capsys)
        assert code == 1 and "editions/2017-11-03.md" in err  # refused now, naming the file


def test_scheduled_send_job_sends_once_and_reports_a_broken_file(
    newsroom: Path, db: Database, smtp_server: SMTPServer
) -> None:
    """The job sends to every subscriber; fired twice, nobody gets two; a broken file is told."""
    add_subscribers(db, newsroom, ["ann@example.org", "bo@example.org"])
    source = str(newsroom / "editions" / "2017-11-02.md")
    jobs.scheduled_send(edition="2017-11-02", source=source)
    jobs.scheduled_send(edition="2017-11-02", source=source)  # a duplicate trigger
    assert sorted(r for m in smtp_server.inbox.messages for r in m.recipients) == [
        "ann@example.org",
        "bo@example.org",
    ]
    (newsroom / "editions" / "2017-11-03.md").write_text("---\ndate: 2017-11-03\n---\n# Wrong\n")
    jobs.scheduled_send(edition="2017-11-03", source=str(newsroom / "editions" / "2017-11-03.md"))
    notice = smtp_server.inbox.messages[-1]
    assert notice.recipients == ["desk@news.example.org"]
    assert "the scheduled send of 2017-11-03 did not go out" in str(notice.message["Subject"])
    assert "2017-11-03.md" in text_part(notice.message)


def test_daily_job_assembles_with_reads_and_tells_editors_when_there_is_no_file(
    newsroom: Path, db: Database, smtp_server: SMTPServer
) -> None:
    """At 07:00 London the day's file plus queued reads goes out; a day with no file is told."""
    from digest.assemble import queue as reads

    add_subscribers(db, newsroom, ["ann@example.org"])
    with db.transaction() as session:
        reads.queue(session, Read("Queued for today", "https://example.org/q"), datetime.now(UTC))
    with time_machine.travel(datetime(2017, 11, 2, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
        jobs.daily_send()  # fired twice: still one message
    [sent] = smtp_server.inbox.messages
    assert sent.recipients == ["ann@example.org"] and "Queued for today" in text_part(sent.message)
    with time_machine.travel(datetime(2017, 11, 3, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
    notice = smtp_server.inbox.messages[-1]
    assert notice.recipients == ["desk@news.example.org"]
    assert "no edition sent for 2017-11-03" in str(notice.message["Subject"])
    assert "digest new 2017-11-03" in text_part(notice.message)


def test_a_dead_relay_freezes_nothing_and_the_reason_is_logged(
    newsroom: Path, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The daily job and a scheduled send probe the relay before freezing: with none there,
    no edition is frozen (nothing waits through the retries) and the log says why."""
    add_subscribers(db, newsroom, ["ann@example.org"])
    port = free_port()
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"smtp://127.0.0.1:{port}")
    caplog.set_level(logging.INFO, "digest.schedule.jobs")
    with time_machine.travel(datetime(2017, 11, 2, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
    jobs.scheduled_send(edition="2017-11-02", source=str(newsroom / "editions" / "2017-11-02.md"))
    with db.transaction() as session:
        assert ledger.latest(session, date(2017, 11, 2)) is None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    refused = f"did not go out: cannot connect: connection refused by 127.0.0.1:{port}"
    assert any(e.startswith(f"edition of 2017-11-02 {refused}") for e in errors), errors
    assert any(e.startswith(f"scheduled send of 2017-11-02 {refused}") for e in errors), errors
    assert not any(r.exc_info for r in caplog.records)  # the reason, not a traceback


def test_approval_policy_skips_unapproved_and_sends_approved(
    newsroom: Path,
    db: Database,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Editors get a [DRAFT]; without `digest approve` nothing goes out, with it the edition does."""
    monkeypatch.setenv("DIGEST_SCHEDULE__POLICY", "approval")
    add_subscribers(db, newsroom, ["ann@example.org"])
    text = (newsroom / "editions" / "2017-11-02.md").read_text()
    (newsroom / "editions" / "2017-11-03.md").write_text(
        text.replace("date: 2017-11-02", "date: 2017-11-03")
    )
    inbox = smtp_server.inbox
    with time_machine.travel(datetime(2017, 11, 2, 6, 0, tzinfo=UTC), tick=True):
        jobs.daily_draft()
    draft, notice = inbox.messages
    assert draft.recipients == notice.recipients == ["desk@news.example.org"]
    assert str(draft.message["Subject"]) == "[DRAFT] Executive Summary for November 2nd"
    assert "digest approve 2017-11-02" in text_part(notice.message)
    with time_machine.travel(datetime(2017, 11, 2, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
    skipped = inbox.messages[-1]
    assert skipped.recipients == ["desk@news.example.org"]
    assert "was not approved and was not sent" in str(skipped.message["Subject"])
    assert not any(m.recipients == ["ann@example.org"] for m in inbox.messages)

    code, out, _ = run(["approve", "2017-11-03"], capsys)
    assert code == 0 and "approved the edition of 2017-11-03" in out
    with time_machine.travel(datetime(2017, 11, 3, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
    sent = [m for m in inbox.messages if m.recipients == ["ann@example.org"]]
    assert len(sent) == 1 and str(sent[0].message["Subject"]) == (
        "Executive Summary for November 3rd"
    )


def test_missed_jobs_run_inside_the_grace_period_and_are_reported_outside_it(
    newsroom: Path, db: Database, smtp_server: SMTPServer
) -> None:
    """Back after downtime: a send due 10 min ago goes out once; one due 2 h ago is reported."""
    import threading
    from contextlib import closing

    from digest.database import open_database
    from digest.schedule.scheduler import add_send, job_store
    from digest.schedule.service import run_scheduler
    from digest.settings import load_settings

    add_subscribers(db, newsroom, ["ann@example.org", "bo@example.org"])
    text = (newsroom / "editions" / "2017-11-02.md").read_text()
    (newsroom / "editions" / "2017-11-03.md").write_text(
        text.replace("date: 2017-11-02", "date: 2017-11-03")
    )
    settings = load_settings()
    assert settings.schedule.grace_minutes == 60
    now = datetime.now(UTC)
    with (
        closing(open_database(settings.database_url)) as store,
        job_store(store, settings) as jobs_,
    ):
        add_send(jobs_, date(2017, 11, 2), "2017-11-02", now - timedelta(minutes=10), None)
        add_send(jobs_, date(2017, 11, 3), "2017-11-03", now - timedelta(hours=2), None)
    stop = threading.Event()
    service = threading.Thread(target=run_scheduler, args=(settings, None, stop))
    service.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            subjects = [str(m.message["Subject"]) for m in smtp_server.inbox.messages]
            if (
                any("send-2017-11-03 was missed" in s for s in subjects)
                and subjects.count("Executive Summary for November 2nd") == 2
            ):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        service.join(timeout=30)
    received = [(m.recipients[0], str(m.message["Subject"])) for m in smtp_server.inbox.messages]
    assert sorted(r for r in received if r[0] != "desk@news.example.org") == [
        ("ann@example.org", "Executive Summary for November 2nd"),
        ("bo@example.org", "Executive Summary for November 2nd"),
    ]
    [notice] = [m for m in smtp_server.inbox.messages if m.recipients == ["desk@news.example.org"]]
    assert "job send-2017-11-03 was missed" in str(notice.message["Subject"])
    assert "not run late" in text_part(notice.message)


def test_commands_never_run_or_drop_a_due_job(
    newsroom: Path, capsys: pytest.CaptureFixture[str], smtp_server: SMTPServer
) -> None:
    """Listing while a send is overdue (service down) leaves it for the service, untouched."""
    from contextlib import closing

    from digest.database import open_database
    from digest.schedule.scheduler import add_send, job_store
    from digest.settings import load_settings

    settings = load_settings()
    with (
        closing(open_database(settings.database_url)) as store,
        job_store(store, settings) as jobs_,
    ):
        past = datetime.now(UTC) - timedelta(minutes=5)
        add_send(jobs_, date(2017, 11, 2), "2017-11-02", past, None)
    threads = set(threading.enumerate())
    for _ in range(2):
        code, out, _ = run(["schedule", "list", "--format", "json"], capsys)
        assert code == 0 and [job["id"] for job in json.loads(out)] == ["send-2017-11-02"]
    # Nothing can send later: the commands left no thread behind and no SMTP connection open.
    assert set(threading.enumerate()) <= threads
    assert smtp_server.inbox.open_sessions == 0 and smtp_server.inbox.mails == 0
    assert smtp_server.inbox.messages == []


def test_broken_and_slow_feeds_are_told_to_editors_and_the_edition_still_goes(
    newsroom: Path,
    db: Database,
    smtp_server: SMTPServer,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feed trouble at 07:00 doesn't stop the edition; the editors get what went wrong."""
    broken = site.page("/broken.xml", "<rss><channel><item><title>x</ti", kind="text/xml")
    slow = site.slow("/slow.xml")
    monkeypatch.setenv("DIGEST_READS__FEEDS", json.dumps([broken, slow]))
    monkeypatch.setenv("DIGEST_READS__FETCH_TIMEOUT_SECONDS", "0.5")
    add_subscribers(db, newsroom, ["ann@example.org"])
    with time_machine.travel(datetime(2017, 11, 2, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
    by_recipient = {m.recipients[0]: m for m in smtp_server.inbox.messages}
    assert str(by_recipient["ann@example.org"].message["Subject"]) == (
        "Executive Summary for November 2nd"
    )
    notice = by_recipient["desk@news.example.org"]
    assert "went out with problems" in str(notice.message["Subject"])
    body = text_part(notice.message)
    assert broken in body and "could not be read" in body
    assert "did not answer within 0.5 s" in body


def test_scheduling_an_edition_already_sent_is_refused_with_what_to_do(
    newsroom: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edition with nothing left to send can't be scheduled: when, to how many, and how."""
    add_subscribers(db, newsroom, ["ann@example.org", "bo@example.org"])
    with time_machine.travel(datetime(2017, 11, 1, 12, 0, tzinfo=UTC), tick=True):
        assert run(["send", "2017-11-02"], capsys)[0] == 0
        code, _, err = run(["schedule", "2017-11-02", "--at", "2017-11-02 07:00"], capsys)
        assert code == 1
        assert (
            "the edition 2017-11-02 was already sent (sending began 2017-11-01 12:00 GMT) to 2 readers"
            in err
        )
        assert "a scheduled send would send nothing" in err
        assert "`digest send 2017-11-02 --new-version`" in err and "--include-new" not in err
        add_subscribers(db, newsroom, ["cy@example.org"])
        code, _, err = run(["schedule", "2017-11-02", "--at", "2017-11-02 07:00"], capsys)
        assert code == 1 and "1 reader joined since" in err
        assert "`digest send 2017-11-02 --include-new` sends it to them" in err
        assert "--new-version" not in err
        path = newsroom / "editions" / "2017-11-02.md"
        path.write_text(path.read_text().replace("harbour dispute", "harbour strike"))
        code, _, err = run(["schedule", "2017-11-02", "--at", "2017-11-02 07:00"], capsys)
        assert code == 1 and "--include-new" in err
        assert "The file changed since: `digest send 2017-11-02 --new-version`" in err
        code, out, _ = run(["schedule", "list", "--format", "json"], capsys)
        assert code == 0 and json.loads(out) == []
    assert len(smtp_server.inbox.messages) == 2


def test_the_daily_and_scheduled_sends_freeze_nothing_for_an_empty_list(
    newsroom: Path, db: Database, smtp_server: SMTPServer
) -> None:
    """No active subscriber at 07:00: the editors are told and nothing is frozen, so the
    day's edition still goes out once readers are added."""
    source = str(newsroom / "editions" / "2017-11-02.md")
    with time_machine.travel(datetime(2017, 11, 2, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
        jobs.scheduled_send(edition="2017-11-02", source=source)
        notices = [str(m.message["Subject"]) for m in smtp_server.inbox.messages]
        told = "[The Morning Ledger] the edition of 2017-11-02 was not sent: nobody to send it to"
        assert notices == [told, told]
        assert "would reach nobody" in text_part(smtp_server.inbox.messages[0].message)
        with db.transaction() as session:
            assert session.scalars(select(FrozenEdition)).all() == []
        add_subscribers(db, newsroom, ["ann@example.org"])
        jobs.daily_send()
    readers = [m for m in smtp_server.inbox.messages if m.recipients == ["ann@example.org"]]
    assert [str(m.message["Subject"]) for m in readers] == ["Executive Summary for November 2nd"]
