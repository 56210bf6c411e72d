"""Jobs stored before the job functions moved still load and run after the upgrade.

APScheduler keeps each job's function as an import path and deletes, with only a log
line, any job whose path no longer imports. Migration 0008 rewrites the stored
``digest.jobs:…`` paths to ``digest.schedule.jobs:…``; these tests store jobs as the
code before the move did, at the revision before 0008, and follow them through.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.executors.base import run_job
from sqlalchemy import Engine, LargeBinary, Unicode, column, select, table

from digest.database import migrate, open_database
from digest.edition.files import EXAMPLE_EDITION
from digest.schedule import jobs
from digest.schedule.scheduler import JOBS_TABLE, add_send, install_daily_jobs, job_store
from digest.settings import Settings, load_settings
from subscribers.db import Database
from tests.helpers import add_subscribers
from tests.mailserver import SMTPServer

BEFORE = "0007"  # the last revision whose code stored "digest.jobs:…"
DAY = date(2017, 11, 2)
OLD = {
    "send-2017-11-02": "digest.jobs:scheduled_send",
    "daily-send": "digest.jobs:daily_send",
    "daily-assemble": "digest.jobs:daily_draft",
}
NEW = {job_id: ref.replace("digest.jobs:", "digest.schedule.jobs:") for job_id, ref in OLD.items()}

stored = table(JOBS_TABLE, column("id", Unicode(191)), column("job_state", LargeBinary()))


def stored_references(engine: Engine) -> dict[str, str]:
    """Each stored job's function path, read from the row as APScheduler wrote it."""
    with engine.connect() as connection:
        rows = connection.execute(select(stored.c.id, stored.c.job_state)).all()
    return {job_id: pickle.loads(blob)["func"] for job_id, blob in rows}


def store_as_before_the_move(database: Database, settings: Settings, at: datetime) -> None:
    """The jobs the old code stored: the same calls, whose state named ``digest.jobs``."""
    with job_store(database, settings) as scheduler:
        add_send(scheduler, DAY, DAY.isoformat(), at, None)
        install_daily_jobs(scheduler, settings, None)
    with database.engine.begin() as connection:
        for job_id, blob in connection.execute(select(stored.c.id, stored.c.job_state)).all():
            state = pickle.loads(blob)
            state["func"] = state["func"].replace("digest.schedule.jobs:", "digest.jobs:")
            connection.execute(
                stored.update()
                .where(stored.c.id == job_id)
                .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
            )


@pytest.fixture
def before_the_move(
    clean_env: Path, db_url: str, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """A database at the revision before 0008, and settings (approval policy) pointing at it."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / f"{DAY.isoformat()}.md")
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_DELIVERY_URL", smtp_server.url)
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "https://list.news.example.org")  # not loopback
    monkeypatch.setenv("DIGEST_SECRET_KEY", "stored-jobs-tests-secret-0123")
    monkeypatch.setenv("DIGEST_SCHEDULE__POLICY", "approval")
    database = open_database(db_url, apply_migrations=False)
    migrate(database.engine, BEFORE)
    yield database
    migrate(database.engine, "base", down=True)
    database.close()


def test_jobs_stored_under_the_old_references_survive_the_upgrade_and_run(
    before_the_move: Database, clean_env: Path, smtp_server: SMTPServer
) -> None:
    """After 0008 the old jobs load as digest.schedule.jobs's functions and the send goes out."""
    database, settings = before_the_move, load_settings()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    store_as_before_the_move(database, settings, at)
    assert stored_references(database.engine) == OLD

    migrate(database.engine)
    assert stored_references(database.engine) == NEW
    add_subscribers(database, clean_env, ["ann@example.org", "bo@example.org"])
    with job_store(database, settings) as scheduler:
        loaded = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
    assert {job_id: job.func for job_id, job in loaded.items()} == {
        "send-2017-11-02": jobs.scheduled_send,
        "daily-send": jobs.daily_send,
        "daily-assemble": jobs.daily_draft,
    }
    send = loaded["send-2017-11-02"]
    assert send.next_run_time == at and send.kwargs["edition"] == DAY.isoformat()
    # run it as APScheduler's executors do, now, on this thread
    events = run_job(send, "default", [datetime.now(UTC)], "digest.schedule.jobs")
    assert [event.code for event in events] == [EVENT_JOB_EXECUTED]
    assert sorted(r for m in smtp_server.inbox.messages for r in m.recipients) == [
        "ann@example.org",
        "bo@example.org",
    ]

    migrate(database.engine, BEFORE, down=True)
    assert stored_references(database.engine) == OLD


def test_without_the_rewrite_apscheduler_drops_the_old_jobs(before_the_move: Database) -> None:
    """The hazard 0008 removes: at the old revision the stored jobs vanish on first listing."""
    database, settings = before_the_move, load_settings()
    store_as_before_the_move(database, settings, datetime.now(UTC) + timedelta(days=1))
    assert stored_references(database.engine) == OLD
    with job_store(database, settings) as scheduler:
        assert scheduler.get_jobs(jobstore="default") == []
    assert stored_references(database.engine) == {}
