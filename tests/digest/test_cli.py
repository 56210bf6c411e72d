from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digest.edition.files import EXAMPLE_EDITION
from tests.helpers import edition_text, run


@pytest.fixture
def workdir(clean_env: Path) -> Path:
    """A working directory with an editions folder holding the example edition."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    return clean_env


def test_preview_by_date_to_stdout(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A date finds the file in the editions folder; HTML goes to stdout with stand-ins filled."""
    code, out, _ = run(["preview", "2017-11-02"], capsys)
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")
    assert "Executive Summary for November 2nd" in out
    assert "[[" not in out
    assert "https://news.example.org/unsubscribe/preview" in out


def test_preview_text_to_file_and_keep_placeholders(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format text --out writes the text twin; --keep-placeholders leaves fields open."""
    code, out, err = run(
        [
            "preview",
            "editions/2017-11-02.md",
            "--format",
            "text",
            "--out",
            "out/e.txt",
            "--keep-placeholders",
        ],
        capsys,
    )
    assert code == 0 and out == ""
    assert "wrote out/e.txt" in err
    text = (workdir / "out" / "e.txt").read_text()
    assert text.startswith("THE MORNING LEDGER")
    assert "[[unsubscribe_url]]" in text


def test_bad_edition_exits_non_zero_without_output(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors name file and line, there is no traceback, and no partial file is written."""
    bad = workdir / "editions" / "2017-11-03.md"
    bad.write_text(edition_text("Intro only.\n", "date: 2017-11-04\ntitel: x\n"))
    code, out, err = run(["preview", "2017-11-03", "--out", "p.html"], capsys)
    assert code == 1
    assert out == ""
    assert "error: the edition has 3 problems:" in err
    assert "editions/2017-11-03.md:2: date 2017-11-04 disagrees with the file name" in err
    assert "editions/2017-11-03.md:3: unknown front-matter key 'titel'" in err
    assert "Traceback" not in err
    assert not (workdir / "p.html").exists()
    assert list(workdir.glob("*.tmp")) == [] and list(workdir.glob(".p.html*")) == []


def test_missing_source_is_a_clear_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path, a date or a word that finds no file says "not found" and names it; exit 1."""
    code, out, err = run(["check", "editions/nope.md"], capsys)
    assert code == 1 and out == ""
    assert "error: editions/nope.md: not found (no such file" in err
    code, _, err = run(["check", "2017-12-25"], capsys)
    assert code == 1
    assert "no edition for 2017-12-25: editions/2017-12-25.md not found" in err
    assert "`digest new 2017-12-25` writes one" in err
    code, _, err = run(["check", "nonsense"], capsys)
    assert code == 1 and "nonsense: not found" in err
    code, _, err = run(["preview", "editions"], capsys)
    assert code == 1 and "editions: not found as an edition file" in err


def test_problems_are_listed_in_line_order(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors and check's warnings come by line, those about the whole file first."""
    bad = workdir / "editions" / "2017-11-03.md"
    bad.write_text(edition_text("Intro only.\n", "date: 2017-11-04\ntitel: x\n"))
    code, _, err = run(["check", "2017-11-03"], capsys)
    assert code == 1
    lines = [line.strip() for line in err.splitlines()[1:]]
    assert [line.split(": ", 1)[0] for line in lines] == [
        "editions/2017-11-03.md:2",  # the date, found last
        "editions/2017-11-03.md:3",
        "editions/2017-11-03.md:5",
    ]
    front = "date: 2017-11-05\nreads:\n  - {title: A, url: https://example.org/a}\n"
    front += "  - {title: B, url: https://example.org/a}\n"
    body = "## Empty one\n\n## Full\n\nSee [here](/relative).\n"
    (workdir / "editions" / "2017-11-05.md").write_text(edition_text(body, front))
    code, out, _ = run(["check", "2017-11-05", "--format", "json"], capsys)
    assert code == 0
    warnings = json.loads(out)["warnings"]
    assert [w["line"] for w in warnings] == [None, None, 7, 9]
    assert "read #2 links the same page" in warnings[1]["message"]  # found after the sections


def test_check_reports_figures_as_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check --format json gives the figures scripts need."""
    code, out, _ = run(["check", "2017-11-02", "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["sections"] == 4 and report["reads"] == 4
    assert report["reading_minutes"] == 3
    assert report["words"] > 400
    assert 20_000 < report["html_bytes"] < report["html_limit_bytes"] == 100_000
    assert report["warnings"] == []


def test_check_warnings_and_strict(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings are shown; --strict turns them into a failing exit status."""
    front = (
        "date: 2017-11-05\nreads:\n  - title: A\n    url: https://Example.org/a/\n"
        "  - title: B\n    url: https://example.org/a\n"
    )
    (workdir / "editions" / "2017-11-05.md").write_text(
        edition_text("## Empty one\n\n## Full\n\nSee [here](/relative).\n", front)
    )
    code, out, _ = run(["check", "2017-11-05"], capsys)
    assert code == 0
    assert "section 'Empty one' is empty" in out
    assert "read #2 links the same page as read #1" in out
    assert "link '/relative' in section 'Full' is not an absolute" in out
    assert "no 'summary:'" in out
    code, _, _ = run(["check", "2017-11-05", "--strict"], capsys)
    assert code == 1


def test_size_limit_from_settings_and_override(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render.max_html_bytes in digest.toml refuses; --allow-large renders anyway."""
    (workdir / "digest.toml").write_text("[render]\nmax_html_bytes = 5000\n")
    code, _, err = run(["preview", "2017-11-02"], capsys)
    assert code == 1 and "over the limit of 5,000 bytes" in err
    code, out, _ = run(["preview", "2017-11-02", "--allow-large"], capsys)
    assert code == 0 and out.startswith("<!DOCTYPE html>")


def test_bad_settings_are_a_clear_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in digest.toml or a bad DIGEST_* value names the setting."""
    (workdir / "digest.toml").write_text("[publication]\nnmae = 'x'\n")
    code, _, err = run(["check", "2017-11-02"], capsys)
    assert code == 1 and "publication.nmae: unknown setting" in err
    (workdir / "digest.toml").write_text("[publication\n")
    code, _, err = run(["check", "2017-11-02"], capsys)
    assert code == 1 and "digest.toml: invalid TOML" in err
    (workdir / "digest.toml").unlink()
    monkeypatch.setenv("DIGEST_PUBLICATION__BRAND_COLOR", "blue")
    code, _, err = run(["check", "2017-11-02"], capsys)
    assert code == 1 and "publication.brand_color" in err and "hex colour" in err
    code, _, err = run(["check", "2017-11-02", "--config", "absent.toml"], capsys)
    assert code == 1 and "absent.toml does not exist" in err


def test_demo_writes_html_and_text(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """digest demo renders the shipped example and says where it is."""
    code, out, _ = run(["demo"], capsys)
    assert code == 0
    html = workdir / "digest-demo" / "edition.html"
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert (workdir / "digest-demo" / "edition.txt").read_text().startswith("THE MORNING LEDGER")
    assert html.resolve().as_uri() in out
    assert "Sent it to 5 example subscribers" in out
    assert (
        "Filed a reader's reply from ada.reader@example.org against the edition of 2017-11-02"
        in out
    )
    assert len(list((workdir / "digest-demo" / "outbox" / "new").iterdir())) == 5
    assert run(["demo"], capsys)[0] == 0  # again: a fresh demo, not a resumed one
    assert len(list((workdir / "digest-demo" / "outbox" / "new").iterdir())) == 5


def test_installed_command_runs(workdir: Path) -> None:
    """The console script works as a separate process and reports errors without tracebacks."""
    script = Path(sys.executable).with_name("digest")
    assert script.exists(), "install the project (pip install -e '.[test]') first"
    done = subprocess.run([str(script), "check", "2017-11-02"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "OK: no errors, no warnings" in done.stdout
    done = subprocess.run([str(script), "preview", "missing.md"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("error: missing.md: not found")
    assert "Traceback" not in done.stderr
