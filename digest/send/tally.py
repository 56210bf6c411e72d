"""What a send did, counted as it goes: shared by its threads, summed over its processes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Tally:
    """What this run did, shared by the threads."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    streak: int = 0  # consecutive failures, any thread
    last_deferral: str | None = None  # why the latest deferral happened
    next_try: datetime | None = None  # when the latest wait for a retry ends
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped


@dataclass(frozen=True)
class SendResult:
    sent: int
    deferred: int
    failed: int
    skipped: int
    paused: str | None  # why the send paused, if it did
    interrupted: bool
