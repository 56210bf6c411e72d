"""``digest subscribers show --format table``: one person's data, record by record.

The same data as the JSON answer (``digest.feedback.person.person_data``), laid out
for an editor reading it on a terminal: who they are, their status history and
consents, the mail filed from or about them, and what was sent to them.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from digest.cli.options import shown

#: The sections after the person's own fields: (key in the data, title, columns).
_SECTIONS = (
    ("status_history", "status history", ("at", "from", "to", "reason")),
    (
        "consents",
        "consents",
        ("at", "method", "form_version", "ip", "user_agent", "confirmed_at"),
    ),
    (
        "mail",
        "mail",
        ("id", "received_at", "kind", "edition", "from", "subject", "text", "detail", "effect"),
    ),
    (
        "deliveries",
        "deliveries",
        ("edition", "version", "status", "attempts", "sent_at", "message_id", "reply"),
    ),
)
_PERSON = ("email", "name", "status", "attributes", "created_at", "status_changed_at")


def _fields(record: dict[str, Any], columns: tuple[str, ...]) -> Table:
    """One record as two columns, field and value: long mail text wraps in its own column."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for column in columns:
        grid.add_row(column, shown(record.get(column)))  # mail is written by strangers
    return grid


def print_person(out: Console, data: dict[str, Any]) -> None:
    """Every field of ``data``, record by record; an empty section says so."""
    out.print("person", markup=False)
    out.print(_fields(data, _PERSON))
    for key, title, columns in _SECTIONS:
        rows = data.get(key) or []
        out.print(f"\n{title} ({len(rows)})" + ("" if rows else ": none"), markup=False)
        for number, row in enumerate(rows):
            if number:
                out.print()
            out.print(_fields(row, columns))
