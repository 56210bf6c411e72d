"""The frozen edition a SOURCE names, for ``digest status``, ``retry``, ``pause`` and ``resume``.

Only the ledger and the date a source names: none of the send pipeline (transports,
composer, renderer), so a command that only reads the ledger starts quickly.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from digest.edition.dates import parse_date
from digest.errors import SourceNotFoundError
from digest.ledger.queries import latest

if TYPE_CHECKING:
    from digest.ledger.models import FrozenEdition
    from subscribers.db import Database


def edition_day(source: str) -> date | None:
    """The date a SOURCE names: ``2017-11-02`` or a file named ``…/2017-11-02.md``."""
    return parse_date(source) or parse_date(Path(source).stem)


def frozen_for(db: Database, source: str) -> FrozenEdition:
    """The newest frozen version of the edition SOURCE names, for status/retry/pause."""
    day = edition_day(source)
    if day is None:
        raise SourceNotFoundError(f"{source!r} names no edition: give its date (YYYY-MM-DD)")
    with db.transaction() as session:
        frozen = latest(session, day)
        if frozen is None:
            raise SourceNotFoundError(
                f"the edition of {day.isoformat()} has not been sent: `digest send "
                f"{day.isoformat()}` starts it"
            )
        session.expunge(frozen)
    return frozen
