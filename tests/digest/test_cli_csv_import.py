"""`digest subscribers import` on files as spreadsheets save them: what it says, how it exits."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from subscribers.db import Database
from tests.helpers import run


@pytest.fixture
def here(clean_env: Path, db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI pointed at the test database, which ``db`` empties afterwards."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    return clean_env


def test_the_report_names_the_encoding_and_the_duplicates(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "list.csv").write_bytes(
        "email;name\r\nrenee@example.com;Renée\r\nRENEE@example.com;=HYPERLINK(1)\r\n".encode(
            "cp1252"
        )
    )
    code, out, _ = run(
        ["subscribers", "import", "list.csv", "--confirmed", "--rejects", "rejects.csv"], capsys
    )
    assert code == 0
    assert "read as Windows-1252 (detected)" in out
    assert "2 rows: 1 added, 0 updated, 0 unchanged, 1 rejected (1 as a duplicate)" in out
    assert "row 3: 'RENEE@example.com' is a duplicate" in out
    with (here / "rejects.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][0] == "3" and rows[1][2:] == ["RENEE@example.com", "'=HYPERLINK(1)"]


def test_an_import_that_rejects_every_row_fails(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "list.csv").write_text("email,name\nnot-an-address,A\nalso bad,B\n")
    code, out, err = run(["subscribers", "import", "list.csv", "--confirmed"], capsys)
    assert code == 1
    assert "2 rows: 0 added, 0 updated, 0 unchanged, 2 rejected" in out
    assert "nothing was imported: every row of list.csv was rejected" in err


def test_a_file_in_no_encoding_is_refused_with_advice(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "list.csv").write_bytes(b"email\n" + random.Random(3).randbytes(5000))
    code, out, err = run(["subscribers", "import", "list.csv", "--confirmed"], capsys)
    assert code == 1 and "rows:" not in out
    assert "cannot tell which character encoding" in err and '"CSV UTF-8' in err
