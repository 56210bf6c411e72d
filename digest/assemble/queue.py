"""The reads queue: links editors (or feeds) put forward, until an edition carries them.

A read is *queued* (``digest reads add``) until an edition carries it; then it is
marked with that edition's date (``used_on``), as are the reads written into edition
files, so "recommended in the last 30 days" is one indexed query. Links are compared
normalised (``digest.edition.urls``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Date, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.edition.model import Read
from digest.edition.urls import normalise_url
from subscribers.models import Base, UTCDateTime


class QueuedRead(Base):
    __tablename__ = "reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(300))  # "editor", "edition file" or a feed URL
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (
        Index("ix_reads_url_key", "url_key"),
        Index("ix_reads_used_on", "used_on"),
    )

    def as_read(self) -> Read:
        return Read(title=self.title, url=self.url, source=self.source, note=self.note)


def queue(
    session: Session,
    read: Read,
    now: datetime,
    origin: str = "editor",
) -> tuple[QueuedRead, bool]:
    """Queue a read for the next edition; (the row, False) if that link is queued already."""
    key = normalise_url(read.url)
    existing = session.scalars(
        select(QueuedRead).where(QueuedRead.url_key == key, QueuedRead.used_on.is_(None))
    ).first()
    if existing is not None:
        return existing, False
    row = QueuedRead(
        url=read.url,
        url_key=key,
        title=read.title,
        source=read.source,
        note=read.note,
        origin=origin,
        added_at=now,
    )
    session.add(row)
    return row, True


def recently_recommended(session: Session, since: date) -> set[str]:
    return set(
        session.scalars(select(QueuedRead.url_key).where(QueuedRead.used_on >= since).distinct())
    )


def mark_used(session: Session, reads: Iterable[Read], day: date, now: datetime) -> None:
    """Record that an edition of ``day`` carried ``reads`` (queued or written in the file)."""
    for read in reads:
        key = normalise_url(read.url)
        queued = session.scalars(
            select(QueuedRead).where(QueuedRead.url_key == key, QueuedRead.used_on.is_(None))
        ).first()
        if queued is None:
            queued, _ = queue(session, read, now, origin="edition file")
        queued.used_on = day
