"""``digest run``: the scheduler and the public web server in one long-running process.

Exactly one scheduler acts at a time. It holds a lock for as long as it runs: a
PostgreSQL advisory lock on a connection it keeps open, or a file lock beside
the SQLite database. Both vanish when the process dies, however it dies, so a
second ``digest run`` polling as a standby takes over within a few seconds.

APScheduler 3 does not notice jobs that another process writes into its store,
so a tiny in-memory "wake" job runs every few seconds; each wake-up re-reads the
stored jobs, which is how a send scheduled from the command line is picked up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.jobstores.memory import MemoryJobStore

from digest.database import DatabaseLock, open_database
from digest.schedule import jobs
from digest.schedule.scheduler import install_daily_jobs, make_scheduler
from digest.send import sender as send
from digest.settings import Settings
from digest.words import plural
from subscribers.db import Database

log = logging.getLogger("digest.run")

WAKE_SECONDS = 3.0
STANDBY_POLL_SECONDS = 5.0
_SCHEDULER_LOCK = 74_201_118  # PostgreSQL advisory lock key: the one active scheduler


def _noop() -> None:
    """The wake job: its running makes the scheduler look at the stored jobs again."""


@contextmanager
def leadership(db: Database, stop: threading.Event) -> Iterator[bool]:
    """Wait (as a standby) until this process is the one scheduler; False if stopped first."""
    lock = DatabaseLock(db, "scheduler", _SCHEDULER_LOCK)
    announced = False
    while not stop.is_set():
        if lock.acquire():
            try:
                yield True
            finally:
                lock.release()
            return
        if not announced:
            log.info("another `digest run` schedules on this database; standing by")
            announced = True
        stop.wait(STANDBY_POLL_SECONDS)
    yield False


def _listener(settings: Settings) -> Any:
    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            when = event.scheduled_run_time
            log.warning(
                "job %s was missed (due %s, past the grace period); not run", event.job_id, when
            )
            jobs.notify_editors(
                settings,
                f"job {event.job_id} was missed",
                f"It was due at {when} while the service was down, longer ago than "
                f"schedule.grace_minutes ({settings.schedule.grace_minutes}), so it was not run "
                "late. Send by hand with `digest send` if it should still go out.",
            )
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s failed: %r", event.job_id, event.exception)
        elif event.job_id != "wake":
            log.info("job %s ran (due %s)", event.job_id, event.scheduled_run_time)

    return on_event


def run_scheduler(settings: Settings, config: str | None, stop: threading.Event) -> None:
    """Be the scheduler (after standing by, if another is active) until ``stop`` is set."""
    db = open_database(settings.database_url)
    try:
        with leadership(db, stop) as leader:
            if not leader:
                return
            scheduler = make_scheduler(db, settings)
            scheduler.add_jobstore(MemoryJobStore(), "internal")
            scheduler.add_listener(
                _listener(settings), EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED
            )
            scheduler.start(paused=True)
            install_daily_jobs(scheduler, settings, config)
            scheduler.add_job(
                _noop, "interval", seconds=WAKE_SECONDS, id="wake", jobstore="internal"
            )
            scheduler.add_job(  # sends a stop or crash interrupted go on now
                "digest.schedule.jobs:resume_sends",
                id="resume-unfinished",
                kwargs={"config": config},
                jobstore="internal",
            )
            if settings.feedback.imap_url is not None:
                scheduler.add_job(  # readers' replies, bounces and complaints
                    "digest.schedule.jobs:fetch_feedback",
                    "interval",
                    minutes=settings.feedback.poll_minutes,
                    id="feedback-fetch",
                    kwargs={"config": config},
                    jobstore="internal",
                    next_run_time=datetime.now(UTC),
                    coalesce=True,
                    max_instances=1,
                )
            scheduler.resume()
            log.info(
                "scheduling: daily edition %s (%s, policy %s); %s",
                settings.schedule.daily_at,
                settings.schedule.timezone,
                settings.schedule.policy,
                plural(len(scheduler.get_jobs(jobstore="default")), "stored job", "stored jobs"),
            )
            stop.wait()
            log.info("stopping: sends in progress stop between batches and resume next start")
            scheduler.pause()  # no job starts from now on
            send.stop_all()
            scheduler.shutdown(wait=True)
            send.allow_sends()
    finally:
        db.close()
