"""The edition as values: what one day's briefing says, free of any file format.

Markdown stays Markdown here (section bodies, headlines, the dek); the renderer
decides how it looks in HTML and in plain text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

#: Adult readers take in news prose at roughly 200–250 words a minute; we use the
#: middle so the estimate neither flatters nor scares.
WORDS_PER_MINUTE = 230

# AP style abbreviates only the longer month names, with a full stop.
_AP_MONTHS = (
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
)


@dataclass(frozen=True)
class Read:
    """A recommended read: another outlet's piece."""

    title: str
    url: str
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Section:
    """One headline and its Markdown body; ``line`` is where the heading stands."""

    headline: str
    body: str
    line: int = 0


@dataclass(frozen=True)
class Edition:
    """One day's Executive Summary."""

    date: date
    title: str
    subject: str
    summary: str
    sections: tuple[Section, ...]
    reads: tuple[Read, ...] = field(default_factory=tuple)
    source: str = "<edition>"


def ordinal(day: int) -> str:
    """``1`` → ``1st``, ``12`` → ``12th``, ``22`` → ``22nd``."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def default_title(day: date) -> str:
    """The title editors get when they set none: "Executive Summary for November 2nd"."""
    return f"Executive Summary for {day.strftime('%B')} {ordinal(day.day)}"


def ap_date(day: date) -> str:
    """The date as a newsroom prints it: "Nov. 2, 2017", "March 5, 2018"."""
    return f"{_AP_MONTHS[day.month - 1]} {day.day}, {day.year}"


def reading_minutes(words: int) -> int:
    """Minutes to read ``words`` words, rounded up, never less than one."""
    return max(1, math.ceil(words / WORDS_PER_MINUTE))


def minutes_phrase(minutes: int) -> str:
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
