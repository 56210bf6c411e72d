"""CSV rows over the limits stop the import where they are, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.database import open_database
from subscribers.csv_import import ImportStoppedError, import_csv
from subscribers.csv_rows import MAX_CELLS, MAX_ROW_CHARS
from subscribers.db import Database
from subscribers.models import Subscriber
from tests.helpers import Clock

#: A quoted cell over the csv module's field limit (131,072), hiding a row inside it.
SMUGGLED = 'a@example.org,"' + "x" * 140_000 + '\nsmuggled@example.com,Smuggled\n"\n'


def emails(db: Database) -> list[str]:
    with db.transaction() as session:
        return sorted(session.scalars(select(Subscriber.email)))


def test_a_row_hidden_in_an_over_long_cell_is_not_imported(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """The import stops at the over-long row, naming it; the row inside the cell never joins."""
    path = tmp_path / "list.csv"
    path.write_text("email,name\nok@example.org,Ok\n" + SMUGGLED + "late@example.org,Late\n")
    with pytest.raises(ImportStoppedError) as stopped:
        import_csv(db, path, clock, confirmed=True)
    message = str(stopped.value)
    assert f"row 3 (line 3) is longer than {MAX_ROW_CHARS:,} characters" in message
    assert "nothing from it on was imported" in message and "(1 added," in message
    assert stopped.value.report.added == 1
    assert emails(db) == ["ok@example.org"]


def test_rows_before_the_bad_one_are_imported_and_it_is_named_by_line(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """A row of too many cells after a two-line cell: named as row 4 on line 5; rows 2-3 in."""
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name\n"
        'one@example.org,"Line one\nline two"\n'
        "two@example.org,Two\n"
        "three@example.org," + "," * MAX_CELLS + "\n"
        "four@example.org,Four\n"
    )
    with pytest.raises(ImportStoppedError) as stopped:
        import_csv(db, path, clock, confirmed=True)
    assert f"row 4 (line 5) has {MAX_CELLS + 2:,} cells" in str(stopped.value)
    assert emails(db) == ["one@example.org", "two@example.org"]


def test_stopping_in_the_parallel_path_keeps_every_earlier_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With rows checked in another process, every row before the bad one is still imported."""
    import subscribers.csv_import as csv_import

    monkeypatch.setattr(csv_import, "BATCH_ROWS", 40)
    path = tmp_path / "list.csv"
    good = "".join(f"p{i}@example.org,P{i}\n" for i in range(150))
    path.write_text("email,name\n" + good + SMUGGLED)
    db = open_database(f"sqlite:///{tmp_path / 'parallel.db'}")
    try:
        with pytest.raises(ImportStoppedError) as stopped:
            import_csv(db, path, Clock(), confirmed=True, workers=1)
        assert "row 152 (line 152)" in str(stopped.value)
        assert stopped.value.report.added == 150
        assert len(emails(db)) == 150 and "smuggled@example.com" not in emails(db)
    finally:
        db.close()


def test_a_header_over_the_limit_is_refused(db: Database, clock: Clock, tmp_path: Path) -> None:
    """A first line over the limit is an error naming the header, before anything is read."""
    from subscribers.errors import AudienceError

    path = tmp_path / "list.csv"
    path.write_text("email," + "x" * MAX_ROW_CHARS + "\nok@example.org,Ok\n")
    with pytest.raises(AudienceError, match="the header row is longer than 65,536 characters"):
        import_csv(db, path, clock, confirmed=True)
    assert emails(db) == []


#: Imports FILE into a new SQLite database at DB; prints the growth of the peak RSS.
_MEASURE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from digest.database import open_database
    from subscribers.csv_import import import_csv
    from subscribers.errors import AudienceError
    from tests.helpers import Clock

    def peak_mib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise SystemExit("no VmHWM in /proc/self/status")

    db = open_database("sqlite:///" + sys.argv[2])
    before = peak_mib()
    try:
        import_csv(db, Path(sys.argv[1]), Clock(), confirmed=True, workers=0)
        error = ""
    except AudienceError as exc:
        error = str(exc)
    print(json.dumps({"growth_mib": peak_mib() - before, "error": error}))
    """
)


def test_a_line_of_millions_of_cells_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A 30 MB line of 15M cells is refused; the peak memory grows by far less than the line.

    Before the limit, the line and its cells were held whole: the peak grew by about 256 MiB.
    """
    path = tmp_path / "wide.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name\nok@example.org,Ok\na@example.org,")
        for _ in range(15):
            handle.write("x," * 1_000_000)
        handle.write("y\n")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "wide.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["error"].startswith(f"{path}: row 3 (line 3) is longer than 65,536 characters")
    assert result["growth_mib"] < 32, result


def test_the_collector_is_set_aside_during_an_import_and_restored_however_it_ends(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """What existed before the import is not rescanned while it runs; after it, even
    after a row that stops it, the garbage collector is as it was."""
    import gc

    before = gc.get_threshold()
    path = tmp_path / "list.csv"
    path.write_text("email,name\none@example.org,One\ntwo@example.org," + "," * MAX_CELLS + "\n")
    during: list[tuple[int, tuple[int, ...]]] = []
    with pytest.raises(ImportStoppedError):
        import_csv(
            db,
            path,
            clock,
            confirmed=True,
            progress=lambda _read, _rows: during.append(
                (gc.get_freeze_count(), gc.get_threshold())
            ),
        )
    assert during and all(frozen > 0 and kept[0] > before[0] for frozen, kept in during)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_objects_the_caller_froze_stay_frozen_after_an_import(tmp_path: Path) -> None:
    """The import sets the collector aside only if nothing was frozen before it."""
    import gc
    from datetime import UTC, datetime

    path = tmp_path / "readers.csv"
    path.write_text("email\nann@example.org\n")
    db = open_database(f"sqlite:///{tmp_path / 'subscribers.db'}")
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        import_csv(db, path, lambda: datetime.now(UTC), confirmed=True)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        db.close()
