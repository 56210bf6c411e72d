"""One clock, one "today" in the publication's zone, one --format option for every command."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from digest.cli.options import flatten
from digest.clock import today, utc_now
from digest.edition.files import EXAMPLE_EDITION
from tests.helpers import run


def test_utc_now_is_aware_utc() -> None:
    """Stored times are compared across processes: never naive, never local."""
    with time_machine.travel(datetime(2017, 11, 2, 23, 30, tzinfo=UTC), tick=False):
        assert utc_now() == datetime(2017, 11, 2, 23, 30, tzinfo=UTC)
        assert utc_now().tzinfo is UTC


def test_today_is_the_publication_day_not_the_machine_day() -> None:
    """At 23:30 UTC it is already the next day in Berlin and still the same in New York."""
    late = datetime(2017, 11, 2, 23, 30, tzinfo=UTC)
    assert today(ZoneInfo("Europe/Berlin"), late) == date(2017, 11, 3)
    assert today(ZoneInfo("America/New_York"), late) == date(2017, 11, 2)
    with time_machine.travel(late, tick=False):
        assert today(ZoneInfo("Europe/Berlin")) == date(2017, 11, 3)


def test_flatten_names_nested_figures_by_path() -> None:
    """A report's nested figures become dotted field names, lists numbered."""
    rows = flatten({"a": 1, "counts": {"sent": 2}, "failures": [{"email": "x@y"}], "tags": ["t"]})
    assert rows == [
        {"field": "a", "value": 1},
        {"field": "counts.sent", "value": 2},
        {"field": "failures.0.email", "value": "x@y"},
        {"field": "tags.0", "value": "t"},
    ]


@pytest.fixture
def workdir(clean_env: Path) -> Path:
    """An empty folder without DIGEST_* settings, holding the example edition."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    return clean_env


def test_check_takes_the_shared_csv_format(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`digest check --format csv` gives field,value rows, like every other --format csv."""
    code, out, _ = run(["check", "2017-11-02", "--format", "csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    figures = {row["field"]: row["value"] for row in rows}
    assert figures["sections"] == "4" and figures["reads"] == "4"
    assert figures["date"] == "2017-11-02"


@pytest.mark.parametrize(
    ("command", "header"),
    [
        (["reads", "list", "--date", "2017-11-02"], "title,url,source,note,from"),
        (["schedule", "list"], "id,what,edition,next_run_time,state"),
        (["subscribers", "list"], "email,name,status,since"),
        (["feedback", "list"], "id,received_at,from,subject,kind,edition,subscriber,text"),
    ],
)
def test_every_list_takes_csv(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: list[str], header: str
) -> None:
    """Each list command accepts the one --format option, csv included, with a header row."""
    code, out, err = run([*command, "--format", "csv"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == header
