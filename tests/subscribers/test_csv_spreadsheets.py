"""CSV files as spreadsheets save them: their encodings, repeated addresses, formulas."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.errors import EncodingError
from subscribers.models import Subscriber
from tests.helpers import Clock


def names(db: Database) -> dict[str, str | None]:
    with db.transaction() as session:
        return {s.email: s.name for s in session.scalars(select(Subscriber))}


def everything(db: Database) -> dict[str, list[Any]]:
    """Every row of the tables an import writes, in a stable order."""
    tables = {
        "subscribers": "SELECT email, email_key, name, status, attributes, created_at, "
        "status_changed_at FROM subscribers ORDER BY id",
        "status_changes": "SELECT subscriber_id, at, old, new, reason FROM status_changes "
        "ORDER BY id",
        "consents": "SELECT subscriber_id, at, method, form_version, confirmed_at FROM consents "
        "ORDER BY id",
    }
    with db.transaction() as session:
        return {
            name: [tuple(r) for r in session.execute(text(sql))] for name, sql in tables.items()
        }


def test_a_windows_1252_export_is_read_as_windows_1252(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Excel's plain "CSV" on Windows: accented names come through, and the report says how."""
    path = tmp_path / "list.csv"
    path.write_bytes(
        "email;name\r\nrenee@example.com;Renée Dupré\r\nzoe@example.com;Zoë – “Z”\r\n".encode(
            "cp1252"
        )
    )
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.rejected) == (2, 0)
    assert report.encoding == "Windows-1252 (detected)"
    assert names(db) == {"renee@example.com": "Renée Dupré", "zoe@example.com": "Zoë – “Z”"}


def test_the_first_accent_far_into_the_file_still_decides(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """A long list whose first non-ASCII name comes after the sample of the file's start."""
    path = tmp_path / "list.csv"
    ascii_rows = "".join(f"reader.{i}@example.com,Reader {i}\n" for i in range(2500))
    assert len(ascii_rows) > 65_536
    path.write_bytes(("email,name\n" + ascii_rows + "renee@example.com,Renée\n").encode("cp1252"))
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.rejected) == (2501, 0)
    assert report.encoding == "Windows-1252 (detected)"
    assert names(db)["renee@example.com"] == "Renée"


def test_valid_utf8_is_read_as_utf8_whatever_it_holds(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """UTF-8 without a BOM whose text looks odd (C1 controls: a guess calls it a Cyrillic
    code page) is still UTF-8."""
    path = tmp_path / "list.csv"
    path.write_bytes("email,name\nzoe@example.com,Zoë\x85\x86\x87 Ünal\n".encode())
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.encoding) == (1, "UTF-8 (detected)")
    assert names(db) == {"zoe@example.com": "Zoë Ünal"}


@pytest.mark.parametrize(
    ("codec", "bom", "described"),
    [
        ("utf-16-le", b"\xff\xfe", "UTF-16 LE (byte-order mark)"),
        ("utf-16-be", b"\xfe\xff", "UTF-16 BE (byte-order mark)"),
    ],
)
def test_excel_unicode_text_is_utf16_with_tabs(
    db: Database, clock: Clock, tmp_path: Path, codec: str, bom: bytes, described: str
) -> None:
    """Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated, CRLF."""
    path = tmp_path / "list.txt"
    rows = "Email\tName\tCity\r\nrenee@example.com\tRenée\tGenève\r\nbo@example.org\tBo\t\r\n"
    path.write_bytes(bom + rows.encode(codec))
    report = import_csv(db, path, clock, confirmed=True)
    assert (report.added, report.rejected) == (2, 0)
    assert report.encoding == described
    assert names(db) == {"renee@example.com": "Renée", "bo@example.org": "Bo"}


def test_a_file_in_no_encoding_is_refused_at_once_with_advice(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Random bytes (or a spreadsheet's own binary format) are not read row by row."""
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,name\n" + random.Random(7).randbytes(8000))
    with pytest.raises(EncodingError, match=r'cannot tell which character encoding.*"CSV UTF-8'):
        import_csv(db, path, clock, confirmed=True)
    assert names(db) == {}


def test_the_same_address_twice_in_a_file_the_first_row_wins(
    db: Database, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second occurrence (any letter case, any batch) is a reported duplicate; importing
    the same file again changes nothing at all."""
    import subscribers.csv_import as csv_import

    monkeypatch.setattr(csv_import, "BATCH_ROWS", 2)  # the repeat comes in a later batch
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name\ndup@example.com,First\nother@example.com,Other\n"
        "DUP@example.com,Second\nsame@example.com,Same\nsame@example.com,Same\n"
    )
    rejects = io.StringIO()
    first = import_csv(db, path, clock, confirmed=True, rejects=rejects)
    assert (first.added, first.updated, first.unchanged, first.rejected) == (3, 0, 0, 2)
    assert first.duplicates == 2
    assert [(r.row, r.reason) for r in first.rejections] == [
        (
            4,
            "'DUP@example.com' is a duplicate: an earlier row of this file has the same "
            "address (the first one is imported)",
        ),
        (
            6,
            "'same@example.com' is a duplicate: an earlier row of this file has the same "
            "address (the first one is imported)",
        ),
    ]
    written = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert [(row[0], row[2]) for row in written[1:]] == [
        ("4", "DUP@example.com"),
        ("6", "same@example.com"),
    ]
    assert "duplicate" in written[1][1]
    assert names(db)["dup@example.com"] == "First"
    before = everything(db)
    clock.tick(days=1)
    second = import_csv(db, path, clock, confirmed=True)
    assert (second.added, second.updated, second.unchanged, second.rejected) == (0, 0, 3, 2)
    assert everything(db) == before


def test_the_rejects_file_is_safe_to_open_in_a_spreadsheet(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Rejected cells that a spreadsheet would run as formulas are written as text, like
    the export writes them."""
    path = tmp_path / "list.csv"
    path.write_text(
        'email,name,=cmd\n"=HYPERLINK(""http://evil"")",@SUM(1),+1\nok@example.org,-2\n'
    )
    rejects = io.StringIO()
    report = import_csv(db, path, clock, confirmed=True, rejects=rejects)
    assert report.rejected == 2
    rows = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert rows[0] == ["row", "reason", "email", "name", "'=cmd"]
    assert rows[1][2:] == ['\'=HYPERLINK("http://evil")', "'@SUM(1)", "'+1"]
    assert rows[2][2:] == ["ok@example.org", "'-2"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
