"""Accepted messages are recorded behind the connection, never too many at once unwritten."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from digest import ledger
from digest.send.recording import UNRECORDED_AT_MOST, Unrecorded


class _SlowWrites(Unrecorded):
    """Each batch takes a while to write (as on a busy database server)."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(db=None)  # type: ignore[arg-type]  # nothing is written to a database
        self.written: list[ledger.SentRow] = []
        self.lock = threading.Lock()
        self.fail_at = fail_at

    def _write(self, rows: list[ledger.SentRow]) -> None:
        time.sleep(0.02)
        with self.lock:
            if self.fail_at is not None and len(self.written) >= self.fail_at:
                raise OSError("the database went away")
            self.written.extend(rows)


def _row(n: int) -> ledger.SentRow:
    return ledger.SentRow(n, f"<{n}@example.org>", "250 OK", datetime.now(UTC))


def test_the_connection_goes_on_while_at_most_the_window_waits_unwritten() -> None:
    recorder = _SlowWrites()
    behind = []
    for n in range(200):
        recorder.add(_row(n))
        with recorder.lock:
            behind.append(n + 1 - len(recorder.written))
    assert max(behind) <= UNRECORDED_AT_MOST
    assert max(behind) > 1  # it did not wait for each batch to be written
    recorder.close()
    assert [row.delivery_id for row in recorder.written] == list(range(200))


def test_a_failed_write_stops_the_connection_and_keeps_its_rows_for_the_next_try() -> None:
    recorder = _SlowWrites(fail_at=10)
    added = 0
    with pytest.raises(OSError, match="went away"):
        for n in range(200):
            added += 1  # accepted: kept, whether its batch is handed over or not
            recorder.add(_row(n))
    assert len(recorder.written) == 10
    recorder.fail_at = None  # the database is back: the stop's last record writes them all
    recorder.close()
    assert [row.delivery_id for row in recorder.written] == list(range(added))
