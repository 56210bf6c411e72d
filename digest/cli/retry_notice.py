"""While ``digest send`` waits for retries: why (the last deferral) and when the next try is.

The progress bar's note says it on a terminal; a line on stderr says it in any case
(a log, a pipe, a terminal scrolled back): when a wait begins, then at most once
every :data:`EVERY` seconds, so a long list retried row by row doesn't flood it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from rich.console import Console

from digest.clock import utc_now
from digest.send.tally import Tally

EVERY = 30.0  # seconds between two lines at most once a wait has been told
_SHORT = 70  # characters of the reason in the bar's note


class RetryNotice:
    """Called with the sender's tally as it goes; tells ``console`` (stderr) about waits."""

    def __init__(
        self,
        console: Console,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self._clock = clock
        self._monotonic = monotonic
        self._seen: datetime | None = None
        self._told_at: float | None = None

    def note(self, tally: Tally) -> str:
        """The bar's note: deferrals so far and, during a wait, when and why."""
        if not tally.deferred:
            return ""
        note = f"{tally.deferred:,} deferred"
        left = self._left(tally)
        if left is not None and tally.last_deferral:
            reason = tally.last_deferral
            short = reason if len(reason) <= _SHORT else reason[: _SHORT - 1] + "…"
            note += f"; next try in {left}: {short}"
        return note

    def tell(self, tally: Tally) -> None:
        """A line when a new wait begins (the first at once, then at most every EVERY s)."""
        if tally.next_try is None or tally.next_try == self._seen:
            return
        now = self._monotonic()
        if self._told_at is not None and now - self._told_at < EVERY:
            return
        self._seen, self._told_at = tally.next_try, now
        left = self._left(tally) or timedelta(0)
        self.console.print(
            f"waiting for retries: the next try at {tally.next_try:%H:%M:%S} UTC (in {left}); "
            f"the last deferral: {tally.last_deferral or 'unknown'}",
            markup=False,
        )

    def _left(self, tally: Tally) -> timedelta | None:
        if tally.next_try is None:
            return None
        seconds = round((tally.next_try - self._clock()).total_seconds())
        return timedelta(seconds=seconds) if seconds > 0 else None
