"""Publishing an edition: from a file (or date) to a frozen edition, then to its readers.

Used by ``digest send``/``resume``, ``digest demo`` and, later, the scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from digest import ledger
from digest.assemble import queue as reads
from digest.assemble.day import Assembled, assemble_source
from digest.edition.files import resolve_source
from digest.edition.model import Edition
from digest.errors import NoRecipientsError, TransportError
from digest.ledger import Frozen, FrozenEdition
from digest.ledger.lookup import edition_day
from digest.render.renderer import Renderer, render_edition
from digest.send.bounces import Thresholds
from digest.send.compose import EditionComposer
from digest.send.links import Links
from digest.send.sender import Sender
from digest.send.transport import Transport, open_delivery
from digest.send.workers import HelperJob, process_count, split
from digest.settings import Settings
from subscribers.db import Database


def check_delivery(
    settings: Settings, then: str, factory: Callable[[], Transport] | None = None
) -> str:
    """Probe the transport for readers' mail (:meth:`Transport.probe`); its description.

    If messages can't go now: a ``TransportError`` with the reason, then ``then``,
    what that means here (e.g. that nothing was frozen).
    """
    try:
        transport = (factory or (lambda: open_delivery(settings)))()
        try:
            transport.probe()
        finally:
            transport.close()
    except TransportError as exc:
        reason = str(exc).rstrip(".")
        raise TransportError(f"{reason}; {then}", code=exc.code, permanent=exc.permanent) from exc
    return transport.description


def _not_frozen(day: object) -> str:
    return f"nothing was frozen or sent; once that is fixed, `digest send {day}` sends it"


def freeze_source(
    db: Database,
    settings: Settings,
    source: str,
    *,
    new_version: bool = False,
    on_problem: Callable[[str], None] | None = None,
    probe: bool = False,
    confirm: Callable[[date, int], None] | None = None,
) -> Frozen:
    """Resume the frozen edition for SOURCE's date, or assemble the day's edition and freeze it.

    The edition frozen is the one ``digest preview`` and ``digest check`` show: the file
    plus queued and feed reads (``digest.assemble.day``). Feed trouble goes to ``on_problem``.
    With ``probe``, the delivery transport is checked (:func:`check_delivery`) before a
    new edition is assembled and frozen: if no message could go, nothing is frozen.
    Before a new freeze, ``confirm(day, readers)`` is called with the number of active
    subscribers it will reach; it raises to stop, and then nothing is frozen. With no
    active subscriber nothing is frozen either: ``NoRecipientsError``.
    """
    day = edition_day(source)
    if day is not None and not new_version:
        with db.transaction() as session:
            existing = ledger.latest(session, day)
            if existing is not None:
                session.expunge(existing)
        if existing is not None:
            changed = False
            path = Path(source) if Path(source).is_file() else settings.editions_dir / f"{day}.md"
            if path.is_file():
                current = ledger.source_sha256(path.read_text(encoding="utf-8", errors="replace"))
                changed = current != existing.source_sha256
            return Frozen(existing, False, changed)
    if day is not None:  # before the feeds are fetched: nobody to send to is said at once
        resolve_source(source, settings.editions_dir)  # but "not found" comes first
        _readers_for_new_send(db, day, new_version)
    if probe:
        check_delivery(settings, _not_frozen(day or source))
    assembled = assemble_source(db, settings, source, datetime.now(UTC))
    for problem in assembled.problems:
        if on_problem is not None:
            on_problem(problem)
    edition = assembled.require()
    readers = _readers_for_new_send(db, edition.date, new_version)
    if confirm is not None and readers is not None:
        confirm(edition.date, readers)
    return freeze_assembled(db, settings, assembled, new_version=new_version)


def _readers_for_new_send(db: Database, day: date, new_version: bool) -> int | None:
    """The active subscribers a new freeze of ``day`` would reach; None if it would resume."""
    with db.transaction() as session:
        if not new_version and ledger.latest(session, day) is not None:
            return None
        readers = ledger.active_readers(session)
    if readers == 0:
        raise NoRecipientsError(day)
    return readers


def freeze_file(
    db: Database, settings: Settings, path: Path, *, new_version: bool = False
) -> Frozen:
    """Freeze the edition in ``path`` (a file anywhere, e.g. the shipped example)."""
    return freeze_source(db, settings, str(path), new_version=new_version)


def freeze_assembled(
    db: Database,
    settings: Settings,
    assembled: Assembled,
    *,
    new_version: bool = False,
    probe: bool = False,
) -> Frozen:
    """Freeze an assembled edition; the stored hash is of the text it was parsed from.

    ``probe``: as for :func:`freeze_source`, checked only if a new version would be frozen.
    """
    edition = assembled.require()
    if probe and not new_version:
        with db.transaction() as session:
            probe = ledger.latest(session, edition.date) is None
    if probe:
        check_delivery(settings, _not_frozen(edition.date.isoformat()))
    return freeze_edition(
        db, settings, edition, str(assembled.path), assembled.sha256, new_version=new_version
    )


def freeze_edition(
    db: Database,
    settings: Settings,
    edition: Edition,
    source: str,
    sha: str,
    *,
    new_version: bool = False,
) -> Frozen:
    """Render ``edition`` and freeze it, or resume the version already frozen for its date."""
    rendered = render_edition(Renderer.from_settings(settings), edition)
    for attempt in (1, 2):
        try:
            with db.transaction() as session:
                frozen = ledger.freeze(
                    session,
                    edition,
                    rendered,
                    source,
                    sha,
                    datetime.now(UTC),
                    new_version=new_version and attempt == 1,
                )
                if frozen.created:
                    reads.mark_used(session, edition.reads, edition.date, frozen.edition.frozen_at)
                session.flush()
                session.expunge(frozen.edition)
            return frozen
        except IntegrityError:  # another process froze the same version first: use it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class SendPlan:
    """A sender ready to go, with what the person should be told first."""

    sender: Sender
    open_rows: int
    counts: dict[ledger.DeliveryStatus, int]
    transport: str


def plan_send(
    db: Database,
    settings: Settings,
    frozen: FrozenEdition,
    *,
    connections: int | None = None,
    wait_for_retries: bool = True,
    transport_factory: Callable[[], Transport] | None = None,
    probed: bool = False,
) -> SendPlan:
    """A sender for ``frozen``'s open rows. The transport is probed first (a dead relay stops
    it at once, before any wait for retries) unless the caller has just done so (``probed``).
    """
    delivery = settings.delivery
    if connections is not None:
        delivery = delivery.model_copy(update={"connections": connections})
    composer = EditionComposer(frozen, settings, Links.from_settings(settings))

    def factory() -> Transport:
        return open_delivery(settings)

    with db.transaction() as session:
        counts = ledger.counts(session, frozen.id)
    open_rows = sum(counts[status] for status in ledger.OPEN)
    if open_rows and not probed:  # before waiting on retries too: a dead relay stops it now
        description = check_delivery(
            settings,
            f"nothing was sent this time; once that is fixed, `digest send "
            f"{frozen.date.isoformat()}` resumes",
            transport_factory,
        )
    else:
        unused = (transport_factory or factory)()
        description = unused.description
        unused.close()
    helper_jobs: list[HelperJob] = []
    processes = process_count(delivery, open_rows)
    if processes > 1 and transport_factory is None:  # a factory given can't cross processes
        delivery, *others = split(delivery, processes)
        url = db.engine.url.render_as_string(hide_password=False)
        helper_jobs = [
            HelperJob(url, settings, part, frozen.id, wait_for_retries, os.getpid())
            for part in others
        ]
    sender = Sender(
        db,
        frozen,
        delivery,
        composer,
        transport_factory or factory,
        wait_for_retries=wait_for_retries,
        thresholds=Thresholds.from_settings(settings.feedback),
        helper_jobs=helper_jobs,
    )
    return SendPlan(sender, open_rows, counts, description)


def draft_composer(settings: Settings, edition: Edition) -> EditionComposer:
    """A composer for ``edition`` as it is now, not frozen: for test sends and drafts."""
    rendered = render_edition(Renderer.from_settings(settings), edition)
    draft = FrozenEdition(
        id=0,
        date=edition.date,
        version=0,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        salt="draft",
    )
    return EditionComposer(draft, settings, Links.from_settings(settings))


def send_drafts(
    settings: Settings, edition: Edition, to: list[str], prefix: str
) -> tuple[str, list[str]]:
    """Send ``edition`` as it is now to each address, ``prefix`` before the subject."""
    composer = draft_composer(settings, edition)
    transport = open_delivery(settings)
    replies = []
    try:
        for address in to:
            composed = composer.compose_test(address, datetime.now(UTC), prefix=prefix)
            replies.append(transport.send(composed.raw, composed.envelope_from, address).reply)
    finally:
        transport.close()
    return transport.description, replies


def send_test(db: Database, settings: Settings, source: str, to: str) -> tuple[str, str]:
    """Send SOURCE's edition as it would go out now to one address, "[TEST]" in the subject.

    The edition is assembled as for the real send (queued and feed reads included);
    nothing is recorded in the ledger.
    """
    edition = assemble_source(db, settings, source, datetime.now(UTC)).require()
    where, [reply] = send_drafts(settings, edition, [to], "[TEST]")
    return where, reply
