"""Who ``digest send`` reaches: the question before mailing the list, readers who joined since.

From a terminal, ``digest send`` says how many readers a new send (or ``--include-new``)
reaches and asks first; ``--yes`` or a run without a terminal (cron, scripts) is not
asked. Resuming a send already frozen is never asked.
"""

from __future__ import annotations

from datetime import date

import typer

from digest import ledger
from digest.cli.options import console
from digest.ledger import FrozenEdition
from digest.words import plural
from subscribers.db import Database


def _readers(count: int) -> str:
    return plural(count, "reader", "readers")


def _confirm(question: str, declined: str) -> None:
    """Ask at the terminal; "no" ends the command with ``declined`` and exit status 1."""
    if not typer.confirm(question, default=False, err=True):  # stdout may be a pipe
        console(stderr=True).print(declined, markup=False)
        raise typer.Exit(1)


def ask_before_freezing(day: date, readers: int) -> None:
    _confirm(
        f"Send the edition of {day.isoformat()} to {_readers(readers)} now?",
        "not sent; nothing was frozen",
    )


def newcomers(db: Database, edition: FrozenEdition, *, include_new: bool, ask: bool) -> int:
    """Readers who joined since ``edition`` was frozen: added (``include_new``) or counted."""
    with db.transaction() as session:
        joined = ledger.newcomers(session, edition.id)
    if not include_new:
        return joined
    out = console()
    if not joined:
        out.print(f"nobody joined since the edition {edition.label} was frozen", markup=False)
        return 0
    if ask:
        _confirm(
            f"Send the edition {edition.label} to the {_readers(joined)} who joined since "
            "it was frozen?",
            "not sent; nobody was added",
        )
    with db.transaction() as session:
        added = ledger.enqueue_newcomers(session, edition.id)
    out.print(
        f"added {_readers(added)} who joined since it was frozen to the edition {edition.label}",
        markup=False,
    )
    return 0


def joined_hint(edition: FrozenEdition, joined: int) -> None:
    if joined:
        day = edition.date.isoformat()
        console().print(
            f"{_readers(joined)} joined since it was frozen and "
            f"{'has' if joined == 1 else 'have'} not got it; "
            f"`digest send {day} --include-new` sends it to them",
            markup=False,
        )
