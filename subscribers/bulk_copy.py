"""Reading and writing an import batch on PostgreSQL: one array, and ``COPY``.

What ``subscribers.bulk_join`` decides is written here with the fastest path
PostgreSQL offers. The batch's addresses go to the server as one array parameter
(``= ANY(%s)``, so the unique index is used and no statement has thousands of
placeholders to compile). Changed subscribers are loaded with ``COPY`` into a
temporary staging table (dropped at commit) and merged with one ``UPDATE … FROM``.
New subscribers, their status history and consent evidence rows are ``COPY``'d
straight into their tables, in the order they were decided, so ids keep that order;
a new subscriber's id is drawn from the id column's own sequence first, so its
history rows need no lookup (a staging table and ``INSERT … SELECT … RETURNING``
measured slower: every row written twice).

New subscribers are ``COPY``'d with no
``ON CONFLICT``: if another process added one of the addresses since the batch
was read, the copy fails with the unique violation (raised as SQLAlchemy's
``IntegrityError``, as any statement's would be), the transaction rolls back and
the importer runs the batch again, now seeing that address as stored. Skipping
the conflict would count as added a row that was not.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from subscribers.addresses import suppression_hash
from subscribers.audience import ConsentEvidence, Stored
from subscribers.models import LEFT, Status

if TYPE_CHECKING:
    from subscribers.bulk_join import BatchRow

#: A stored subscriber of the batch: (id, normalised address, what is stored).
Found = tuple[int, str, "Stored"]

_STORED = """
SELECT s.id, s.email_key, s.email, s.name, s.status::text, s.attributes, s.status_changed_at,
       s.status = 'pending' AND EXISTS (
           SELECT 1 FROM status_changes c
           WHERE c.subscriber_id = s.id AND c.new::text = ANY(%(left)s)
       )
FROM subscribers s
WHERE s.email_key = ANY(string_to_array(%(keys)s, E'\\n'))
"""
_SUPPRESSED = (
    "SELECT email_hash FROM suppressions WHERE email_hash = ANY(string_to_array(%s, E'\\n'))"
)
_NEW = (
    "COPY subscribers (id, email, email_key, name, status, attributes, created_at, "
    "status_changed_at) FROM STDIN"
)
#: Ids for the new subscribers, taken from the column's own sequence, in order.
_IDS = (
    "SELECT nextval(pg_get_serial_sequence('subscribers', 'id')) "
    "FROM generate_series(1, %s) ORDER BY 1"
)
_STAGING = """
CREATE TEMPORARY TABLE import_changed (
    id integer NOT NULL,
    name text,
    status subscriber_status NOT NULL,
    attributes json NOT NULL,
    status_changed_at timestamptz NOT NULL
) ON COMMIT DROP
"""
_STAGE = "COPY import_changed (id, name, status, attributes, status_changed_at) FROM STDIN"
_UPDATE = """
UPDATE subscribers s
SET name = i.name, status = i.status, attributes = i.attributes,
    status_changed_at = i.status_changed_at
FROM import_changed i
WHERE s.id = i.id
"""


def stored(session: Session, keys: set[str]) -> tuple[list[Found], set[str]]:
    """The stored subscribers of ``keys`` (pending ones knowing whether they ever left
    before) and which keys are suppressed: two queries, each with one array."""
    cursor = _cursor(session)
    found: list[Found] = []
    left = sorted(status.value for status in LEFT)
    cursor.execute(_STORED, {"keys": _lines(keys), "left": left})
    for subscriber_id, key, email, name, status, attributes, changed_at, left in cursor:
        stored = Stored(email, name, Status(status), attributes, _utc(changed_at), bool(left))
        found.append((subscriber_id, key, stored))
    hashes = {suppression_hash(key): key for key in keys}
    cursor.execute(_SUPPRESSED, [_lines(hashes)])
    return found, {hashes[digest] for (digest,) in cursor}


def _lines(values: Collection[str]) -> str:
    """``values`` as one text, a line each, for ``string_to_array`` on the server: one
    parameter to send instead of an array psycopg builds value by value (most of the
    time of these queries). Addresses and hashes never hold a line break:
    email-validator refuses control characters."""
    text = "\n".join(values)
    if text.count("\n") != max(len(values) - 1, 0):
        raise ValueError("a value with a line break cannot be sent as a line")
    return text


def flush(
    session: Session, state: Mapping[str, BatchRow], now: datetime, evidence: ConsentEvidence
) -> int:
    """Write the batch's new and changed subscribers, their status changes and consents."""
    now = _utc(now)
    new = [(row, row.stored) for row in state.values() if row.is_new and row.stored]
    changed = [
        (row, row.stored) for row in state.values() if row.dirty and not row.is_new and row.stored
    ]
    cursor = _cursor(session)
    if new:
        cursor.execute(_IDS, [len(new)])
        for (subscriber_id,), (row, _) in zip(cursor.fetchall(), new, strict=True):
            row.subscriber_id = subscriber_id
        _copy(
            session,
            _NEW,
            (
                (
                    row.subscriber_id,
                    row.typed,
                    row.key,
                    s.name,
                    s.status.value,
                    json.dumps(s.attributes),
                    now,
                    now,
                )
                for row, s in new
            ),
        )
    if changed:
        cursor.execute(_STAGING)
        _copy(
            session,
            _STAGE,
            (
                (
                    row.subscriber_id,
                    s.name,
                    s.status.value,
                    json.dumps(s.attributes),
                    _utc(s.status_changed_at),
                )
                for row, s in changed
            ),
        )
        cursor.execute(_UPDATE)
    changes = [
        (row.subscriber_id, now, old.value if old else None, new.value, why)
        for row in state.values()
        for old, new, why in row.changes
    ]
    if changes:
        _copy(
            session,
            "COPY status_changes (subscriber_id, at, old, new, reason) FROM STDIN",
            changes,
        )
    method, version = evidence.method.value, evidence.form_version
    consents = [
        (row.subscriber_id, now, method, version, now if confirmed_now else None)
        for row in state.values()
        for confirmed_now in row.consents
    ]
    if consents:
        _copy(
            session,
            "COPY consents (subscriber_id, at, method, form_version, confirmed_at) FROM STDIN",
            consents,
        )
    return sum(1 for _, s in new if s.status is Status.pending)


def _cursor(session: Session) -> Any:
    """A psycopg cursor on the session's connection, inside its transaction."""
    return session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]


def _copy(session: Session, statement: str, rows: Iterable[Sequence[object]]) -> None:
    """``COPY … FROM STDIN`` of ``rows``; a constraint it breaks is an ``IntegrityError``,
    as it would be from any other statement (the importer then retries the batch)."""
    import psycopg

    cursor = _cursor(session)
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
