"""CSV export of subscribers, safe to open in a spreadsheet.

Cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
carriage return at the start) are written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import Status, Subscriber

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


EXPORT_COLUMNS = ("email", "name", "status", "created_at", "status_changed_at", "attributes")


def export_csv(session: Session, out: SupportsWrite[str], status: Status | None = None) -> int:
    """Write subscribers as CSV, streamed from the database; returns the count."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    if status is not None:
        query = query.where(Subscriber.status == status)
    count = 0
    for subscriber in session.scalars(query):
        writer.writerow(
            [
                safe_cell(subscriber.email),
                safe_cell(subscriber.name or ""),
                subscriber.status.value,
                subscriber.created_at.isoformat(),
                subscriber.status_changed_at.isoformat(),
                safe_cell(json.dumps(subscriber.attributes, ensure_ascii=False))
                if subscriber.attributes
                else "",
            ]
        )
        count += 1
    return count
