"""When things run: APScheduler 3 with its jobs kept in the project's own database.

Jobs are stored in the ``apscheduler_jobs`` table (APScheduler's
SQLAlchemyJobStore on our engine), reference their functions by import path and
have fixed ids, so a restart replaces rather than duplicates them. A command
that changes jobs while no scheduler runs opens the store with a *paused*
scheduler: the change is written to the database and nothing runs here.

Job functions take the settings file's path (or None) and load settings when
they fire, so a job always acts on the configuration of the moment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from digest.errors import ScheduleError
from digest.settings import ScheduleSettings, Settings
from subscribers.db import Database

log = logging.getLogger("digest.schedule.scheduler")

JOBS_TABLE = "apscheduler_jobs"
DAILY_SEND_ID = "daily-send"
DAILY_ASSEMBLE_ID = "daily-assemble"
SEND_PREFIX = "send-"
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$")


def parse_at(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """``YYYY-MM-DD HH:MM`` in the publication's zone, or ISO 8601 with an offset.

    Refused: a time in the past, a local time that doesn't exist (the hour skipped
    when clocks go forward), and ISO times without an offset (ambiguous).
    """
    value = text.strip()
    try:
        if _LOCAL.match(value):
            naive = datetime.fromisoformat(value.replace(" ", "T"))
            moment = naive.replace(tzinfo=zone)
            round_trip = moment.astimezone(ZoneInfo("UTC")).astimezone(zone)
            if round_trip.replace(tzinfo=None) != naive:
                raise ScheduleError(
                    f"{value} does not exist in {zone.key} (the clocks skip that hour)"
                )
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ScheduleError(
                    f"{value!r} has no UTC offset; write 'YYYY-MM-DD HH:MM' (in {zone.key}) "
                    "or ISO 8601 with an offset, e.g. 2017-11-02T07:00:00+00:00"
                )
    except ValueError as exc:
        raise ScheduleError(
            f"{value!r} is not a time: write 'YYYY-MM-DD HH:MM' (in {zone.key}) or ISO 8601 "
            "with an offset, e.g. 2017-11-02T07:00:00+00:00"
        ) from exc
    if moment <= now:
        raise ScheduleError(
            f"{value} is in the past (now: {now.astimezone(zone):%Y-%m-%d %H:%M %Z})"
        )
    return moment


def daily_trigger(settings: ScheduleSettings, at: str | None = None) -> CronTrigger:
    """Every day at ``at`` (default ``daily_at``) local time; DST handled by the zone."""
    hour, minute = (at or settings.daily_at).split(":")
    return CronTrigger(hour=int(hour), minute=int(minute), timezone=settings.zone)


class _StoreOnlyScheduler(BackgroundScheduler):  # type: ignore[misc]  # untyped base
    """Reads and writes the job store; never looks for due jobs, never runs or drops one.

    A stopped APScheduler 3 thread can still process due jobs once on its way out
    (and remove a date job it could not submit), so the commands use this instead.
    """

    def _main_loop(self) -> None:
        return


def make_scheduler(
    db: Database, settings: Settings, kind: type[BackgroundScheduler] = BackgroundScheduler
) -> BackgroundScheduler:
    grace = settings.schedule.grace_minutes * 60
    return kind(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)},
        timezone=settings.schedule.zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace or 1},
    )


@contextmanager
def job_store(db: Database, settings: Settings) -> Iterator[BackgroundScheduler]:
    """The stored jobs, through a scheduler that never processes them: nothing runs here."""
    scheduler = make_scheduler(db, settings, _StoreOnlyScheduler)
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    what: str
    edition: str | None
    next_run_time: datetime | None

    @property
    def state(self) -> str:
        return "scheduled" if self.next_run_time is not None else "paused"

    def as_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "what": self.what,
            "edition": self.edition,
            "next_run_time": self.next_run_time.isoformat() if self.next_run_time else None,
            "state": self.state,
        }


def list_jobs(scheduler: BackgroundScheduler) -> list[ScheduledJob]:
    found = []
    for job in scheduler.get_jobs(jobstore="default"):
        edition = job.kwargs.get("edition")
        if job.id == DAILY_SEND_ID:
            what = "daily edition: assemble and send"
        elif job.id == DAILY_ASSEMBLE_ID:
            what = "daily draft to the editors for approval"
        else:
            what = f"send the edition of {edition}"
        found.append(ScheduledJob(job.id, what, edition, job.next_run_time))
    return sorted(found, key=lambda j: (j.next_run_time is None, j.next_run_time or 0, j.id))


def send_job_id(day: date) -> str:
    return f"{SEND_PREFIX}{day.isoformat()}"


def add_send(
    scheduler: BackgroundScheduler, day: date, source: str, at: datetime, config: str | None
) -> str:
    """Store a one-off send of the edition of ``day`` at ``at``; its id."""
    job_id = send_job_id(day)
    if scheduler.get_job(job_id, jobstore="default") is not None:
        raise ScheduleError(
            f"the edition of {day.isoformat()} is already scheduled (job {job_id}); "
            f"`digest schedule move {job_id} --at …` changes the time"
        )
    scheduler.add_job(
        "digest.schedule.jobs:scheduled_send",
        trigger=DateTrigger(run_date=at),
        id=job_id,
        name=f"send {day.isoformat()}",
        kwargs={"edition": day.isoformat(), "source": source, "config": config},
        jobstore="default",
    )
    return job_id


def cancel(scheduler: BackgroundScheduler, job_id: str) -> None:
    try:
        scheduler.remove_job(job_id, jobstore="default")
    except JobLookupError:
        raise ScheduleError(
            f"no scheduled job {job_id!r}; `digest schedule list` shows them"
        ) from None


def move(scheduler: BackgroundScheduler, job_id: str, at: datetime) -> None:
    if scheduler.get_job(job_id, jobstore="default") is None:
        raise ScheduleError(f"no scheduled job {job_id!r}; `digest schedule list` shows them")
    if not job_id.startswith(SEND_PREFIX):
        raise ScheduleError(
            f"{job_id} follows the [schedule] settings; change daily_at / assemble_at instead"
        )
    scheduler.reschedule_job(job_id, jobstore="default", trigger=DateTrigger(run_date=at))


def install_daily_jobs(
    scheduler: BackgroundScheduler, settings: Settings, config: str | None
) -> None:
    """The daily jobs as the settings say, replacing any stored ones (or removing them: off)."""
    schedule = settings.schedule
    wanted = {}
    if schedule.policy != "off":
        wanted[DAILY_SEND_ID] = ("digest.schedule.jobs:daily_send", daily_trigger(schedule))
    if schedule.policy == "approval":
        wanted[DAILY_ASSEMBLE_ID] = (
            "digest.schedule.jobs:daily_draft",
            daily_trigger(schedule, schedule.assemble_at),
        )
    for job_id in (DAILY_SEND_ID, DAILY_ASSEMBLE_ID):
        if job_id in wanted:
            func, trigger = wanted[job_id]
            scheduler.add_job(
                func,
                trigger=trigger,
                id=job_id,
                name=job_id,
                kwargs={"config": config},
                jobstore="default",
                replace_existing=True,
            )
        elif scheduler.get_job(job_id, jobstore="default") is not None:
            scheduler.remove_job(job_id, jobstore="default")
