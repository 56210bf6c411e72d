"""On PostgreSQL an import batch travels by COPY, in a few statements, whatever its size."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

import subscribers.csv_import as csv_import
from subscribers import bulk_copy
from subscribers.audience import ConsentEvidence, Stored
from subscribers.bulk_join import BatchRow
from subscribers.db import Database
from subscribers.models import Consent, ConsentMethod, Status, StatusChange, Subscriber
from tests.helpers import Clock

ONLY_POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _trace(db: Database, into: Path) -> None:
    """Record, with libpq's trace, every message the import's connections send and get."""
    from psycopg.pq import Trace

    db.engine.dispose()  # new connections from here on, each traced

    @event.listens_for(db.engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        handle = into.open("a")
        dbapi_connection.pgconn.trace(handle.fileno())
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        _connect.handles.append(handle)  # type: ignore[attr-defined]

    _connect.handles = []  # type: ignore[attr-defined]


@ONLY_POSTGRES
def test_rows_go_by_copy_in_a_few_statements_a_batch(
    db: Database, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not one statement (or one bound parameter set) per row: 5 batches, a handful each."""
    monkeypatch.setattr(csv_import, "BATCH_ROWS", 500)
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name,city\n" + "".join(f"p{n}@example.org,P {n},Leeds\n" for n in range(2500))
    )
    trace = tmp_path / "trace.txt"
    _trace(db, trace)
    report = csv_import.import_csv(db, path, clock, confirmed=True, workers=0)
    db.engine.dispose()
    assert (report.added, report.rejected) == (2500, 0)
    lines = (line.split("\t") for line in trace.read_text().splitlines())
    sent = [fields for fields in lines if len(fields) >= 4]  # direction, length, kind, …
    statements = Counter(kind for way, _, kind, *_ in sent if way == "F" and kind in STATEMENTS)
    assert sum(statements.values()) <= 5 * 12, statements
    copied: Counter[str] = Counter()
    table = ""
    for way, _, kind, *rest in sent:
        if way == "F" and kind == "Query" and rest[0].strip(' "').startswith("COPY "):
            table = rest[0].split()[1]
        elif way == "B" and kind == "CommandComplete" and table:
            copied[table] += int(re.findall(r"\d+", rest[0])[0])
            table = ""
    assert copied == {"subscribers": 2500, "status_changes": 2500, "consents": 2500}
    with db.transaction() as session:
        first = session.scalars(select(Subscriber).where(Subscriber.email_key == "p0@example.org"))
        one = first.one()
        assert (one.name, one.status, one.attributes) == ("P 0", Status.active, {"city": "Leeds"})
        assert [(c.old, c.new, c.reason) for c in one.changes] == [(None, Status.active, "import")]
        assert [(c.method, c.confirmed_at) for c in one.consents] == [("import", clock())]
        assert session.scalar(select(func.count()).select_from(Consent)) == 2500
        assert session.scalar(select(func.count()).select_from(StatusChange)) == 2500


#: What a client sends to run a statement: a simple query, or a prepared one's binding.
STATEMENTS = ("Query", "Bind")


@ONLY_POSTGRES
def test_an_address_another_process_added_meanwhile_makes_the_batch_retry(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """The COPY of a new subscriber someone else just added fails as IntegrityError, the
    error the importer retries a batch on, and leaves nothing of the batch behind."""
    path = tmp_path / "list.csv"
    path.write_text("email\ntaken@example.org\n")
    csv_import.import_csv(db, path, clock, confirmed=True)
    now = clock.tick(minutes=1)
    # the batch was decided before the address was stored: it believes it is new
    stored = Stored("taken@example.org", None, Status.active, {}, now.astimezone(UTC))
    rows = {
        key: BatchRow(key, key, stored, None, is_new=True, changes=[(None, Status.active, "x")])
        for key in ("fresh@example.org", "taken@example.org")
    }
    evidence = ConsentEvidence(ConsentMethod.import_, form_version="csv import")
    with pytest.raises(IntegrityError), db.transaction() as session:
        bulk_copy.flush(session, rows, now, evidence)
    with db.transaction() as session:
        assert session.scalars(select(Subscriber.email_key)).all() == ["taken@example.org"]
        assert session.scalar(select(func.count()).select_from(StatusChange)) == 1
