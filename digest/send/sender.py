"""Sending a frozen edition: claim, compose, hand over, record — on several connections.

Each connection is a thread with its own transport. A thread claims a batch of
due rows, then for each row composes the message, waits for the shared rate
limit and sends. Accepted messages are recorded in small batches by a writer
thread of the connection while it sends on (:mod:`digest.send.recording`), all of
them before any failure is recorded and whenever the thread stops: at most
``UNRECORDED_AT_MOST`` per connection are accepted but not yet recorded, the only
ones that can arrive twice after a crash (``kill -9``). (The other case SMTP itself leaves open: a
server that drops the connection after taking the message but before
answering. That delivery is deferred, not resent at once, and its retry may
duplicate it.)

Only one process may own an edition's send on SQLite (a lock file beside the
database; its helper processes, :mod:`digest.send.workers`, work under it). On
PostgreSQL each sender holds an advisory lock on its own key while it runs and
claims rows with ``FOR UPDATE SKIP LOCKED``; rows left ``sending`` by a sender whose
lock is gone (it died) go back to ``pending``. Both are ``DatabaseLock``. A refusal is
judged, and counted toward the reader's bounce threshold, by ``digest.send.bounces``.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import select, update

from digest import ledger
from digest.clock import utc_now
from digest.database import DatabaseLock, held_elsewhere
from digest.errors import (
    DigestError,
    EditionPausedError,
    SendBusyError,
    TransportError,
    UnsafeAddressError,
)
from digest.ledger import DeliveryStatus, FrozenEdition, Recipient
from digest.send import bounce_counts, bounces
from digest.send.compose import EditionComposer
from digest.send.pacing import RateLimit, retry_delay
from digest.send.recording import Unrecorded
from digest.send.tally import SendResult, Tally
from digest.send.transport import Transport
from digest.send.workers import HelperEnd, HelperJob, Helpers
from digest.settings import DeliverySettings
from subscribers.db import Database

_POLL_SECONDS = 2.0


_RUNNING: set[Sender] = set()
_RUNNING_LOCK = threading.Lock()


_STOPPING = threading.Event()


def stop_all() -> None:
    """Stop every send in this process after its current message; start no new one."""
    with _RUNNING_LOCK:
        _STOPPING.set()
        for sender in _RUNNING:
            sender.stop.set()


def allow_sends() -> None:
    """After a stop has completed (the service is down), sends may start again."""
    _STOPPING.clear()


class Sender:
    """Sends one frozen edition until nothing is due, it pauses, or it is stopped."""

    def __init__(
        self,
        db: Database,
        edition: FrozenEdition,
        settings: DeliverySettings,
        composer: EditionComposer,
        transport_factory: Callable[[], Transport],
        *,
        wait_for_retries: bool = True,
        clock: Callable[[], datetime] = utc_now,
        thresholds: bounces.Thresholds | None = None,
        helper_jobs: list[HelperJob] | None = None,
        helper: bool = False,
    ) -> None:
        """``helper_jobs``: processes to start beside this one's threads; ``helper``:
        this is one, under the lock of its first process (:mod:`digest.send.workers`)."""
        self.db = db
        self.edition_id = edition.id
        self.settings = settings
        self.composer = composer
        self.transport_factory = transport_factory
        self.wait_for_retries = wait_for_retries
        self.clock = clock
        self.thresholds = thresholds or bounces.Thresholds()
        self.key = secrets.randbits(62) + 1
        self.tally = Tally()
        self.stop = threading.Event()
        self.rate = RateLimit(settings.rate_per_second)
        self.pause_reason: str | None = None
        self.failure: BaseException | None = None
        self._rng = random.Random()
        self.helper_jobs = helper_jobs or []
        self.helper = helper

    # ---- ownership ---------------------------------------------------------------

    @contextmanager
    def _owned(self) -> Iterator[None]:
        # SQLite: one lock per edition, so a second sender is refused. PostgreSQL: one
        # lock per sender (its own random key), which says "alive" to the others.
        if self.helper and self.db.is_sqlite:  # the process that started it holds the lock
            yield
            return
        with DatabaseLock(self.db, f"send-{self.edition_id}", self.key) as held:
            if not held:
                raise SendBusyError(
                    "another `digest send` is sending this edition from this database; "
                    "on SQLite one process sends an edition at a time (use PostgreSQL to "
                    "share a send between processes)"
                )
            if self.db.is_sqlite:
                with self.db.transaction() as session:
                    ledger.release(session, self.edition_id, None)  # left by a dead sender
            else:
                self._reclaim_abandoned()
            yield

    def _reclaim_abandoned(self) -> int:
        """PostgreSQL: rows claimed by senders that no longer hold their lock go back."""
        if self.db.is_sqlite:
            return 0
        with self.db.transaction() as session:
            keys = [k for k in ledger.claimers(session, self.edition_id) if k != self.key]
        dead = [key for key in keys if not held_elsewhere(self.db, key)]
        if not dead:
            return 0
        with self.db.transaction() as session:
            return ledger.release(session, self.edition_id, dead)

    # ---- the run -----------------------------------------------------------------

    def run(self, on_progress: Callable[[Tally], None] | None = None) -> SendResult:
        with self.db.transaction() as session:
            edition = session.get(FrozenEdition, self.edition_id)
            if edition is not None and edition.paused_at is not None:
                raise EditionPausedError(
                    f"the edition {edition.label} is paused ({edition.pause_reason}); "
                    "`digest resume` lets it go on"
                )
        with _RUNNING_LOCK:
            _RUNNING.add(self)
            if _STOPPING.is_set():  # the process is shutting down: claim nothing
                self.stop.set()
        try:
            return self._run_owned(on_progress)
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self)

    def _run_owned(self, on_progress: Callable[[Tally], None] | None) -> SendResult:
        interrupted = False
        ends: list[HelperEnd] = []
        with self._owned():
            helpers: Helpers | None = None
            threads: list[threading.Thread] = []
            try:
                helpers = Helpers(self.helper_jobs) if self.helper_jobs else None
                threads = [
                    threading.Thread(target=self._work, name=f"sender-{n}", daemon=True)
                    for n in range(self.settings.connections)
                ]
                for thread in threads:
                    thread.start()
                while any(t.is_alive() for t in threads) or (helpers and helpers.alive()):
                    for thread in threads:
                        thread.join(timeout=0.2 / max(1, len(threads)))
                    if helpers is not None:  # one stopping stops all, as threads do
                        if not any(t.is_alive() for t in threads):
                            helpers.wait(0.2)  # only they are left
                        if self.stop.is_set():
                            helpers.stop()
                        elif helpers.stopped:
                            self.stop.set()
                    if on_progress is not None:
                        on_progress(helpers.add_counts(self.tally) if helpers else self.tally)
            except BaseException as exc:
                interrupted = isinstance(exc, KeyboardInterrupt)
                self.stop.set()
                if helpers is not None:
                    helpers.stop()
                for thread in threads:
                    if thread.ident is not None:  # a Ctrl-C may come before all have started
                        thread.join()
                if not interrupted:
                    raise
            finally:
                if helpers is not None:  # their final counts are in once they have ended
                    ends = helpers.finish()
                    self.tally = helpers.add_counts(self.tally)
        for end in ends:
            interrupted = interrupted or end.interrupted
            self.pause_reason = self.pause_reason or end.paused
            if end.error and self.failure is None:
                self.failure = DigestError(end.error)
        if on_progress is not None:
            on_progress(self.tally)
        if self.failure is not None:
            raise DigestError(
                f"sending stopped: {self.failure}; what was sent is recorded, and "
                "`digest send` resumes once the cause is fixed"
            ) from self.failure
        tally = self.tally
        return SendResult(
            tally.sent, tally.deferred, tally.failed, tally.skipped, self.pause_reason, interrupted
        )

    def _paused(self) -> bool:
        with self.db.transaction() as session:
            paused = session.scalar(
                select(FrozenEdition.paused_at).where(FrozenEdition.id == self.edition_id)
            )
        return paused is not None

    def _work(self) -> None:
        transport: Transport | None = None
        sent = Unrecorded(self.db)
        after = 0  # the highest id this thread claimed (see ledger.claim)
        try:
            while not self.stop.is_set():
                if self._paused():
                    self.stop.set()
                    break
                with self.db.transaction() as session:
                    batch, skipped = ledger.claim(
                        session,
                        self.edition_id,
                        self.key,
                        self.settings.batch_size,
                        self.clock(),
                        after,
                    )
                after = max([after, *(recipient.delivery_id for recipient in batch)])
                if skipped:
                    with self.tally.lock:
                        self.tally.skipped += skipped
                if not batch and skipped:
                    continue
                if not batch:
                    sent.record()  # so the counts below see every row sent as sent
                    if self._nothing_due_left():
                        break
                    continue
                for index, recipient in enumerate(batch):
                    if self.stop.is_set():
                        sent.record()
                        self._unclaim(batch[index:])
                        break
                    try:
                        if transport is None:
                            transport = self.transport_factory()
                        self._deliver(transport, recipient, sent)
                    except BaseException:
                        sent.record()
                        self._unclaim(batch[index:])  # not sent: back to pending
                        raise
                sent.hand_over()  # recorded while the next batch goes
        except BaseException as exc:
            # Any thread's failure stops them all; run() reports it.
            self.stop.set()
            self.failure = self.failure or exc
        finally:
            try:
                sent.close()
            except Exception as exc:  # the database failed too: reported by run(), no traceback
                self.stop.set()
                self.failure = self.failure or exc
            finally:
                if transport is not None:
                    transport.close()

    def _nothing_due_left(self) -> bool:
        """No row was due: finish, or wait for the next retry (or another sender's rows)."""
        with self.db.transaction() as session:
            counts = ledger.counts(session, self.edition_id)
            retry_at = ledger.next_retry(session, self.edition_id)
        if counts[DeliveryStatus.pending]:
            return False  # became due meanwhile (released by a stopped thread)
        if counts[DeliveryStatus.sending] and self._reclaim_abandoned():
            return False
        if not counts[DeliveryStatus.deferred] or not self.wait_for_retries:
            return True
        if retry_at is None:  # another thread took the deferred rows meanwhile
            return False
        with self.tally.lock:
            self.tally.next_try = retry_at
        delay = (retry_at - self.clock()).total_seconds()
        self.stop.wait(min(max(delay, 0.05), _POLL_SECONDS))
        return False

    def _unclaim(self, recipients: list[Recipient]) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ledger.Delivery)
                .where(
                    ledger.Delivery.id.in_([r.delivery_id for r in recipients]),
                    ledger.Delivery.status == DeliveryStatus.sending,
                )
                .values(status=DeliveryStatus.pending, claimed_by=None)
            )

    def _deliver(self, transport: Transport, recipient: Recipient, sent: Unrecorded) -> None:
        now = self.clock()
        try:
            composed = self.composer.compose(recipient, now)
        except UnsafeAddressError as exc:  # can't be written safely: this reader only, for good
            sent.record()
            self._record_failure(
                recipient, TransportError(str(exc), permanent=True, per_message=True)
            )
            return
        self.rate.wait()
        try:
            reply = transport.send(
                composed.raw, composed.envelope_from, recipient.email, composed.stuffed
            ).reply
        except TransportError as exc:
            sent.record()
            self._record_failure(recipient, exc)
            return
        sent.add(ledger.SentRow(recipient.delivery_id, composed.message_id, reply, now))
        with self.tally.lock:
            self.tally.sent += 1
            self.tally.streak = 0

    def _record_failure(self, recipient: Recipient, error: TransportError) -> None:
        now = self.clock()
        reason = str(error)
        attempts = recipient.attempts + 1
        permanent = error.permanent and error.per_message
        with self.db.transaction() as session:
            if permanent or attempts >= self.settings.max_attempts:
                bounce = bounces.classify_refusal(error) if permanent else None
                recorded = bounces.tagged(bounce, reason) if bounce else reason
                subscriber = ledger.record_failed(session, recipient.delivery_id, recorded)
                if bounce is not None and subscriber is not None:
                    bounce_counts.count_bounce(
                        session, subscriber, bounce, self.thresholds, now, f"bounce: {reason}"
                    )
                outcome = "failed"
            else:
                delay = retry_delay(attempts, self.settings, self._rng)
                ledger.record_deferred(
                    session.connection(),
                    recipient.delivery_id,
                    reason,
                    now + timedelta(seconds=delay),
                )
                outcome = "deferred"
        with self.tally.lock:
            if outcome == "failed":
                self.tally.failed += 1
            else:
                self.tally.deferred += 1
                self.tally.last_deferral = reason
            self.tally.streak += 1
            streak = self.tally.streak
        if streak >= self.settings.pause_after_errors and not self.stop.is_set():
            self._pause(f"{streak} failures in a row; the last: {reason}")

    def _pause(self, reason: str) -> None:
        self.pause_reason = reason
        self.stop.set()
        with self.db.transaction() as session:
            ledger.set_paused(session, self.edition_id, reason, self.clock())
