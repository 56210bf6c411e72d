from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.database import open_database
from subscribers.csv_export import export_csv
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.models import Status, Subscriber
from tests.helpers import Clock


def statuses(db: Database) -> dict[str, tuple[str, Status, str | None]]:
    with db.transaction() as session:
        return {
            s.email_key: (s.email, s.status, s.name) for s in session.scalars(select(Subscriber))
        }


def test_bom_semicolons_case_duplicates_and_broken_rows(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """A spreadsheet's CSV: BOM, ';', the same address twice in different case, broken rows."""
    path = tmp_path / "list.csv"
    path.write_bytes(
        "\ufeffEmail;Name;City\n"
        "ann@example.org;Ann;Leeds\n"
        "ANN@Example.org;Ann;Leeds\n"
        "not-an-address;X;\n"
        "short@example.org\n"
        "\n"
        "bo@example.org;Bo;York\n".encode()
        + b"caf\xe9@example.org;C;\n"
    )
    rejects = io.StringIO()
    report = import_csv(db, path, clock, confirmed=True, rejects=rejects)
    assert (report.added, report.updated, report.unchanged, report.rejected) == (2, 0, 0, 4)
    assert report.encoding == "UTF-8 (byte-order mark)"
    assert [(r.row, r.reason.split(":")[0]) for r in report.rejections] == [
        (3, "'ANN@Example.org' is a duplicate"),
        (4, "'not-an-address' is not a valid email address"),
        (5, "1 cell where the header has 3"),
        (8, "the row is not valid UTF-8 text"),
    ]
    rows = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert rows[0] == ["row", "reason", "email", "name", "city"]
    assert [r[0] for r in rows[1:]] == ["3", "4", "5", "8"]
    found = statuses(db)
    assert found["ann@example.org"] == ("ann@example.org", Status.active, "Ann")
    assert set(found) == {"ann@example.org", "bo@example.org"}
    with db.transaction() as session:
        bo = session.scalars(
            select(Subscriber).where(Subscriber.email_key == "bo@example.org")
        ).one()
        assert bo.attributes == {"city": "York"}


def test_import_twice_is_idempotent_and_pending_without_confirmed(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """A second run adds nothing; without --confirmed new rows are pending."""
    path = tmp_path / "list.csv"
    path.write_text("email,name\na@example.org,A\nb@example.org,\n")
    first = import_csv(db, path, clock, confirmed=False)
    second = import_csv(db, path, clock, confirmed=False)
    assert (first.added, first.pending) == (2, 2)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 2)
    assert {s for _, s, _ in statuses(db).values()} == {Status.pending}


def test_missing_email_column_is_a_clear_error(db: Database, clock: Clock, tmp_path: Path) -> None:
    """Without an 'email' column nothing is imported and the message says what to fix."""
    import pytest

    from subscribers.errors import AudienceError

    path = tmp_path / "list.csv"
    path.write_text("mail,name\na@example.org,A\n")
    with pytest.raises(AudienceError, match="no 'email' column"):
        import_csv(db, path, clock, confirmed=True)
    assert statuses(db) == {}


def test_export_neutralises_formulas(db: Database, clock: Clock, tmp_path: Path) -> None:
    """Cells starting with = + - @ are exported as text for spreadsheets."""
    path = tmp_path / "list.csv"
    path.write_text(
        'email,name\n"=x@example.org","=HYPERLINK(""http://evil"")"\nok@example.org,+1 234\n'
    )
    import_csv(db, path, clock, confirmed=True)
    out = io.StringIO()
    with db.transaction() as session:
        assert export_csv(session, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["email"] == "'=x@example.org"
    assert rows[0]["name"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["name"] == "'+1 234"


cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(cell, max_size=5), max_size=15), st.sampled_from([",", ";", "\t"]))
def test_no_row_can_crash_the_importer(tmp_path: Path, rows: list[list[str]], sep: str) -> None:
    """Whatever the rows hold, every one is counted and the import finishes."""
    path = tmp_path / "fuzz.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(["email", "name"])
        writer.writerows(rows)
    db = open_database(f"sqlite:///{tmp_path / 'fuzz.db'}")
    try:
        report = import_csv(db, path, Clock(), confirmed=True)
        non_blank = sum(1 for row in rows if any(c.strip() for c in row))
        assert report.rows == non_blank  # every row is counted exactly once
        assert report.rejected == len(report.rejections)
        assert report.added == len(statuses(db))
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp_path / 'fuzz.db'}{suffix}").unlink(missing_ok=True)


def test_import_keeps_the_same_history_as_one_join(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Bulk writes record what audience.join would: one change and one consent per event."""
    from subscribers import audience
    from subscribers.addresses import parse_address
    from subscribers.models import ConsentMethod

    with db.transaction() as session:
        audience.join(
            session,
            parse_address("old@example.org"),
            clock(),
            audience.ConsentEvidence(ConsentMethod.editor),
        )
    path = tmp_path / "list.csv"
    path.write_text("email,name\nold@example.org,Old\nnew@example.org,\n")
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 0)
    path.write_text("email,name\nNEW@example.org,New\n")
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    with db.transaction() as session:
        new = audience.person_data(audience.get(session, "new@example.org"))
        old = audience.person_data(audience.get(session, "old@example.org"))
    assert (new["email"], new["name"], new["status"]) == ("new@example.org", "New", "active")
    assert [(h["from"], h["to"], h["reason"]) for h in new["status_history"]] == [
        (None, "active", "import")
    ]
    assert [(c["method"], c["confirmed_at"] is not None) for c in new["consents"]] == [
        ("import", True)
    ]
    assert [(h["from"], h["to"], h["reason"]) for h in old["status_history"]] == [
        (None, "pending", "editor"),
        ("pending", "active", "confirmed by import"),
    ]
    assert [(c["method"], c["confirmed_at"] is not None) for c in old["consents"]] == [
        ("editor", False),
        ("import", True),
    ]
    assert old["name"] == "Old"


def test_rows_checked_in_a_second_process_give_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parallel path (used for big files) imports exactly what the inline one does."""
    import subscribers.csv_import as csv_import

    monkeypatch.setattr(csv_import, "BATCH_ROWS", 40)
    path = tmp_path / "list.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "team"])
        for i in range(300):
            if i % 37 == 0:
                writer.writerow([f"broken-{i}", "", ""])
            elif i % 11 == 0:  # an address from an earlier batch, in other case
                writer.writerow([f"P{i // 2}@Example.org", f"Person {i}", "b"])
            else:
                writer.writerow([f"p{i}@example.org", f"Person {i}", "a"])
    results = []
    for workers in (0, 1):
        db = open_database(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        try:
            report = import_csv(db, path, Clock(), confirmed=False, workers=workers)
            results.append(
                (
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.pending,
                    [(r.row, r.reason) for r in report.rejections],
                    statuses(db),
                )
            )
        finally:
            db.close()
    assert results[0] == results[1]
    reasons = [reason for _, reason in results[0][4]]
    assert results[0][0] > 200 and sum("is not a valid email" in r for r in reasons) == 9
    assert sum("is a duplicate" in r for r in reasons) > 0  # P… after p… in an earlier batch


def test_imported_rows_store_their_moments_and_attributes_as_one_added_by_hand(
    db: Database, tmp_path: Path
) -> None:
    """New subscribers written in bulk hold the same stored values (text of the moment,
    JSON of the attributes, status) as one written by the ORM at the same moment."""
    from sqlalchemy import text

    from subscribers import audience
    from subscribers.addresses import parse_address
    from subscribers.audience import ConsentEvidence
    from subscribers.models import ConsentMethod

    clock = Clock()
    path = tmp_path / "list.csv"
    path.write_text("email,name,city\nbulk@example.org,Bulk,Leeds\n")
    import_csv(db, path, clock, confirmed=True)
    with db.transaction() as session:
        audience.join(
            session,
            parse_address("hand@example.org"),
            clock.now,
            ConsentEvidence(ConsentMethod.import_, form_version="csv import"),
            name="Hand",
            confirmed=True,
            attributes={"city": "Leeds"},
        )
    columns = "status, attributes, created_at, status_changed_at"
    with db.engine.connect() as connection:
        stored = connection.execute(
            text(f"SELECT email, {columns} FROM subscribers ORDER BY email")
        ).all()
    assert [tuple(row[1:]) for row in stored[:1]] == [tuple(row[1:]) for row in stored[1:]]
