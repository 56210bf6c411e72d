"""Approval of a day's edition by an editor (``schedule.policy = "approval"``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from digest.ledger.models import Approval


def approve(session: Session, day: date, who: str, now: datetime) -> bool:
    """Record approval of ``day``'s edition; False if it was approved already."""
    if session.get(Approval, day) is not None:
        return False
    session.add(Approval(date=day, approved_at=now, approved_by=who[:200]))
    return True


def is_approved(session: Session, day: date) -> bool:
    return session.get(Approval, day) is not None
