"""``digest subscribers show --format table``: one person's data, record by record.

The same data as the JSON answer (``digest.feedback.person.person_data``), laid out
for an editor reading it on a terminal: who they are, their status history and
consents, the mail filed from or about them, and what was sent to them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


#: Control characters, terminal escapes among them: mail is written by strangers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _cell(value: Any) -> Text:
    """A cell shown as written: no markup run, control characters shown as ``\\xNN``."""
    if value is None:
        return Text("")
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return Text(_CONTROL.sub(lambda found: f"\\x{ord(found.group(0)):02x}", shown))


def _fields(record: dict[str, Any], columns: tuple[str, ...]) -> Table:
    """One record as two columns, field and value: long mail text wraps in its own column."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for column in columns:
        grid.add_row(column, _cell(record.get(column)))
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
