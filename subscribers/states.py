"""A subscriber's status, apart from the models: ``digest subscribers list --status`` offers
its values without importing SQLAlchemy (``subscribers.models`` re-exports it)."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"
