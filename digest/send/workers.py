"""Sender processes: one send spread over the machine's cores.

Python runs one thread of a process at a time, so a send's connections, as threads
of one process, share one core however many the machine has; composing and handing
over a message is CPU work. With more than one process (``delivery.processes``; by
default one per core when more than :data:`SPREAD_FROM` messages are due),
``digest send`` starts helper processes, each a :class:`~digest.send.sender.Sender`
with its share of the connections, working on the same ledger the way two
``digest send`` processes share one on PostgreSQL: each claims its own rows
(SQLite's ``BEGIN IMMEDIATE`` and PostgreSQL's ``SKIP LOCKED`` keep claims apart)
and records its own outcomes, so every guarantee holds per connection as before.

The first process keeps the send's lock; on SQLite the helpers work under it. A
helper dies with the process that started it (``PR_SET_PDEATHSIG``), so ``kill -9``
of ``digest send`` stops every connection at once and leaves the same window as
threads do. Ctrl-C, SIGTERM or a failure anywhere ask every helper to stop after its
current message, recording what it holds, as threads do.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

from digest import HELPER_STARTING
from digest.errors import EditionPausedError
from digest.send.tally import Tally
from digest.settings import DeliverySettings, Settings
from subscribers.csv_import import die_with_parent

#: Fewer messages than this go out from one process: starting another (its imports)
#: costs about a second, which a short send would not win back.
SPREAD_FROM = 5_000

_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process holding threads


def process_count(delivery: DeliverySettings, due: int) -> int:
    """How many processes send ``due`` messages: never more than there are connections."""
    wanted = delivery.processes
    if not wanted:
        wanted = _cores() if due > SPREAD_FROM else 1
    return max(1, min(wanted, delivery.connections))


def _cores() -> int:
    """The cores this process may run on (its affinity, as ``taskset`` sets it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split(delivery: DeliverySettings, processes: int) -> list[DeliverySettings]:
    """Each process's delivery settings: the connections shared as evenly as they go, the
    rate limit in proportion (it is for the send in all); the first is this process's."""
    whole = delivery.connections
    return [
        delivery.model_copy(
            update={"connections": n, "rate_per_second": delivery.rate_per_second * n / whole}
        )
        for n in (whole // processes + (i < whole % processes) for i in range(processes))
    ]


@dataclass(frozen=True)
class HelperJob:
    """What a helper process needs to send its part of an edition."""

    database_url: str
    settings: Settings
    delivery: DeliverySettings  # its share of the connections and of the rate limit
    edition_id: int
    wait_for_retries: bool
    parent: int  # the pid it must not outlive


@dataclass(frozen=True)
class HelperEnd:
    """How a helper finished: why it paused or failed, if it did."""

    paused: str | None = None
    error: str | None = None
    interrupted: bool = False  # stopped by a signal (Ctrl-C, SIGTERM)


class Helpers:
    """The helper processes of one send, their live counts, and the way to stop them.

    Nothing shared with them takes a lock (a flag byte, their counts, a pipe each): a
    helper that ends, or is killed, while holding a lock would hang the others.
    """

    def __init__(self, jobs: list[HelperJob]) -> None:
        self.stopping: Synchronized[int] = _CONTEXT.RawValue("b", 0)
        self.counters: list[SynchronizedArray[int]] = [
            _CONTEXT.RawArray("q", 4)  # sent, deferred, failed, skipped
            for _ in jobs
        ]
        self.processes: list[SpawnProcess] = []
        self.pipes: list[Connection] = []
        try:
            for n, job in enumerate(jobs):
                ours, theirs = _CONTEXT.Pipe(duplex=False)
                process = _CONTEXT.Process(
                    target=helper_main,
                    args=(job, self.stopping, self.counters[n], theirs),
                    name=f"digest-sender-{n + 1}",
                    daemon=True,
                )
                with _starting_quietly():
                    process.start()
                theirs.close()
                self.processes.append(process)
                self.pipes.append(ours)
        except BaseException:
            self.stop()
            self.finish()
            raise

    def stop(self) -> None:
        """Every helper stops after its current message."""
        self.stopping.value = 1

    @property
    def stopped(self) -> bool:
        return bool(self.stopping.value)

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def wait(self, seconds: float) -> None:
        """Until one of them ends, or ``seconds`` have passed."""
        for process in self.processes:
            if process.is_alive():
                process.join(seconds)
                return

    def add_counts(self, tally: Tally) -> Tally:
        """``tally`` with every helper's counts so far added."""
        sent, deferred, failed, skipped = (
            sum(counter[i] for counter in self.counters) for i in range(4)
        )
        return Tally(
            sent=tally.sent + sent,
            deferred=tally.deferred + deferred,
            failed=tally.failed + failed,
            skipped=tally.skipped + skipped,
            last_deferral=tally.last_deferral,
            next_try=tally.next_try,
        )

    def finish(self) -> list[HelperEnd]:
        """Wait for every helper; how each ended (a helper that died says so)."""
        ends = [
            self._end(process, pipe)
            for process, pipe in zip(self.processes, self.pipes, strict=True)
        ]
        for process, pipe in zip(self.processes, self.pipes, strict=True):
            process.close()
            pipe.close()
        self.processes, self.pipes = [], []
        return ends

    def _end(self, process: SpawnProcess, pipe: Connection) -> HelperEnd:
        end: HelperEnd | None = None
        while end is None and (process.is_alive() or pipe.poll()):
            if pipe.poll(0.2):  # read while it runs: its last word must never wait on us
                try:
                    end = pipe.recv()
                except EOFError:
                    break
        process.join()
        if end is not None:
            return end
        if process.exitcode in (-signal.SIGINT, -signal.SIGTERM):
            return HelperEnd(interrupted=True)
        return HelperEnd(
            error=f"a sender process ended unexpectedly (exit code {process.exitcode})"
        )


_STARTING = threading.Lock()


@contextlib.contextmanager
def _starting_quietly() -> Iterator[None]:
    """A helper started now ignores Ctrl-C and SIGTERM until its handlers are in.

    Ignored signals would stay ignored across ``exec`` (a blocked mask does not: the
    spawn resets it), but ignoring them here would lose one meant for this process, and
    a handler does not survive ``exec``. So the helper is told by its environment, and
    ``digest/__init__.py``, its first import, ignores them; a signal in the moment
    before that kills it (counted as an interruption: it holds no rows yet).
    """
    with _STARTING:  # two sends starting helpers at once (digest run) must not undo it
        os.environ[HELPER_STARTING] = "1"
        try:
            yield
        finally:
            os.environ.pop(HELPER_STARTING, None)


def helper_main(
    job: HelperJob,
    stopping: Synchronized[int],
    counter: SynchronizedArray[int],
    pipe: Connection,
) -> None:
    """A helper process: send under the first process's lead until nothing is due."""
    die_with_parent(job.parent)  # kill -9 of digest send ends its helpers too
    sender: Any = None
    interrupted = False

    def stop_now(*_: object) -> None:
        nonlocal interrupted
        interrupted = True
        stopping.value = 1  # the others too: as threads, one interrupted sender stops the send
        if sender is not None:
            sender.stop.set()

    signal.signal(signal.SIGINT, stop_now)  # ignored until now (see _starting_quietly)
    signal.signal(signal.SIGTERM, stop_now)
    try:
        sender = _helper_sender(job)
        if interrupted or stopping.value:  # told to stop while it was starting
            sender.stop.set()

        def watch_stop() -> None:
            while not sender.stop.wait(0.1):
                if stopping.value:
                    sender.stop.set()

        threading.Thread(target=watch_stop, name="stop-watch", daemon=True).start()

        def progress(tally: Tally) -> None:
            counter[:] = [tally.sent, tally.deferred, tally.failed, tally.skipped]

        result = sender.run(progress)
        end = HelperEnd(paused=result.paused, interrupted=interrupted)
    except EditionPausedError:  # paused before it began: the first process knows why
        end = HelperEnd(interrupted=interrupted)
    except Exception as exc:  # told to the first process, which reports it
        stopping.value = 1  # one failing stops them all, as with threads
        end = HelperEnd(error=str(exc.__cause__ or exc))
    with contextlib.suppress(OSError):  # the first process is gone: nobody to tell
        pipe.send(end)
        pipe.close()


def _helper_sender(job: HelperJob) -> Any:
    from digest.database import open_database
    from digest.ledger import FrozenEdition
    from digest.send.bounces import Thresholds
    from digest.send.compose import EditionComposer
    from digest.send.links import Links
    from digest.send.sender import Sender
    from digest.send.transport import open_delivery

    settings = job.settings
    db = open_database(job.database_url, apply_migrations=False)
    with db.transaction() as session:
        frozen = session.get(FrozenEdition, job.edition_id)
        if frozen is None:
            raise LookupError(f"no frozen edition {job.edition_id}")
        session.expunge(frozen)
    return Sender(
        db,
        frozen,
        job.delivery,
        EditionComposer(frozen, settings, Links.from_settings(settings)),
        lambda: open_delivery(settings),
        wait_for_retries=job.wait_for_retries,
        thresholds=Thresholds.from_settings(settings.feedback),
        helper=True,
    )
