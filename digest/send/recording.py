"""Recording accepted messages: in small batches, written while the connection goes on.

One transaction a message was a fifth of a send's CPU, and on PostgreSQL each is a
wait for the server, during which the connection sent nothing. So a connection's
accepted messages are gathered :data:`RECORD_EVERY` at a time (sooner once the oldest
has waited :data:`RECORD_SECONDS`) and handed to a writer thread of its own, which
records them in one transaction while the connection sends the next ones. A batch is
handed over only once the previous one is written, so at any moment at most
:data:`UNRECORDED_AT_MOST` messages per connection have been accepted and not yet
recorded: after ``kill -9`` those are the only ones that can arrive twice.
:meth:`Unrecorded.record` writes everything and waits, as before a failure is
recorded and whenever the connection stops.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from digest import ledger
from subscribers.db import Database

#: Accepted messages recorded together, by the connection's writer thread.
RECORD_EVERY = 10
#: ... and none waits (much) longer than this, however slowly messages go.
RECORD_SECONDS = 1.0
#: Accepted but not yet recorded, per connection, at any moment: a batch being written
#: and the next one filling up. After a crash these are the only ones sent twice.
UNRECORDED_AT_MOST = 2 * RECORD_EVERY


class Unrecorded:
    """One connection's accepted messages not yet recorded."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows: list[ledger.SentRow] = []
        self.since = 0.0
        self._writer: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None
        self._batch: list[ledger.SentRow] = []  # what the writer is writing

    def add(self, row: ledger.SentRow) -> None:
        if not self.rows:
            self.since = time.monotonic()
        self.rows.append(row)
        if len(self.rows) >= RECORD_EVERY or time.monotonic() - self.since >= RECORD_SECONDS:
            self.hand_over()

    def hand_over(self) -> None:
        """The rows gathered go to the writer, once it has written the previous ones."""
        self._wait()
        if self.rows:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="recorder")
            self._batch, self.rows = self.rows, []
            self._writing = self._writer.submit(self._write, self._batch)

    def record(self) -> None:
        """Every accepted message recorded, now: the writer's batch and those gathered.

        If the database refuses, they are kept, to be tried again by the next call.
        """
        self._wait()
        if self.rows:
            self._write(self.rows)
            self.rows = []

    def close(self) -> None:
        """Everything recorded (as :meth:`record`), and the writer thread ended."""
        try:
            self.record()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None

    def _wait(self) -> None:
        """Until the writer's batch is in; if it failed, its rows are gathered again (to
        be written by the next try) and the failure is raised here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            try:
                writing.result()
            except BaseException:
                self.rows = self._batch + self.rows
                raise
            finally:
                self._batch = []

    def _write(self, rows: list[ledger.SentRow]) -> None:
        with self.db.engine.begin() as connection:
            ledger.record_sent_rows(connection, rows)
