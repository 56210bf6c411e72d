"""How fast a send goes: the shared rate limit, and the backoff before a retry."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from digest.settings import DeliverySettings


def retry_delay(attempts: int, settings: DeliverySettings, rng: random.Random) -> float:
    """Exponential backoff with ±20% jitter, so retries of many rows don't arrive together."""
    base = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1))
    return float(base * rng.uniform(0.8, 1.2))


class RateLimit:
    """At most ``per_second`` sends in all threads together (0: no limit).

    ``sleep`` and ``clock`` are the real ones but for tests, which hold the clock still.
    """

    def __init__(
        self,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
