"""stored scheduler jobs follow their functions from digest.jobs to digest.schedule.jobs

APScheduler stores each job's function as an import path inside a pickled state
and, when that path no longer imports, logs it and deletes the job: an editor's
scheduled send would vanish. The job functions moved from ``digest.jobs`` to
``digest.schedule.jobs``, so the stored paths are rewritten here (and back on
downgrade). A row that does not unpickle is left as it is, for APScheduler to report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import logging
import pickle

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

OLD_MODULE = "digest.jobs"
NEW_MODULE = "digest.schedule.jobs"
FUNCTIONS = ("daily_send", "daily_draft", "scheduled_send", "resume_sends", "fetch_feedback")
#: What APScheduler's SQLAlchemyJobStore writes with (its default; make_scheduler keeps it).
PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL

jobs = sa.table(
    "apscheduler_jobs",
    sa.column("id", sa.Unicode(191)),
    sa.column("job_state", sa.LargeBinary()),
)


def _rewrite(old_module: str, new_module: str) -> None:
    """Point every stored job whose function is ``old_module:NAME`` at ``new_module:NAME``."""
    renames = {f"{old_module}:{name}": f"{new_module}:{name}" for name in FUNCTIONS}
    connection = op.get_bind()
    for job_id, blob in connection.execute(sa.select(jobs.c.id, jobs.c.job_state)).all():
        try:
            state = pickle.loads(blob)
        except Exception as exc:  # any unpickling failure: not this migration's to judge
            log.warning("scheduler job %s does not load (%s); left as it is", job_id, exc)
            continue
        func = state.get("func") if isinstance(state, dict) else None
        if func in renames:
            state["func"] = renames[func]
            connection.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(job_state=pickle.dumps(state, PICKLE_PROTOCOL))
            )


def upgrade() -> None:
    _rewrite(OLD_MODULE, NEW_MODULE)


def downgrade() -> None:
    _rewrite(NEW_MODULE, OLD_MODULE)
