"""The publisher's one clock: now in UTC, and today in the publication's time zone.

Every timestamp stored or compared is an aware UTC ``datetime`` from
:func:`utc_now`; code that must be testable takes a ``clock`` argument that
defaults to it. Which day's edition "today" is depends on where the publication
is, not on the machine's zone: :func:`today` answers it for a zone
(``settings.schedule.zone``), at an optional given moment.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo


def utc_now() -> datetime:
    """Now, as an aware UTC datetime (never the machine's local time)."""
    return datetime.now(UTC)


def today(zone: tzinfo, now: datetime | None = None) -> date:
    """The calendar date in ``zone`` at ``now`` (default: this moment).

    At 23:30 UTC it is already tomorrow in Berlin: the edition of a day is the
    publication's day, so callers pass ``settings.schedule.zone``.
    """
    moment = utc_now() if now is None else now
    return moment.astimezone(zone).date()
