"""A command that writes or sends first names its settings file, or says there is none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer.main

from digest.cli.app import app
from digest.cli.notice import QUIET, WRITING, commands
from digest.edition.files import EXAMPLE_EDITION
from tests.helpers import run

NO_FILE = (
    'no digest.toml in {folder}: using the built-in example settings; "digest init" writes one'
)


def test_every_command_is_writing_or_quiet() -> None:
    """Each command is placed in exactly one of the two lists, so a new one can't be missed."""
    paths = {path for path, _ in commands(typer.main.get_command(app))}
    assert WRITING.isdisjoint(QUIET)
    assert paths == WRITING | QUIET


def test_a_writing_command_without_digest_toml_says_so(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`subscribers add` in a folder without digest.toml says it runs on the example settings."""
    code, out, err = run(["subscribers", "add", "ann@example.org"], capsys)
    assert code == 0, err
    assert err.splitlines()[0] == NO_FILE.format(folder=clean_env)
    assert err.count("digest init") == 1
    assert "added (pending)" in out


def test_a_writing_command_names_its_settings_file(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """./digest.toml, or the file --config / DIGEST_CONFIG names, and DIGEST_* settings by name."""
    (clean_env / "digest.toml").write_text('[publication]\nname = "Harbour Post"\n')
    (clean_env / "other.toml").write_text('[publication]\nname = "Other Post"\n')
    args = ["subscribers", "add", "ann@example.org", "--confirmed"]
    err = run(args, capsys)[2]
    assert err == f"using settings from {clean_env / 'digest.toml'}\n"
    err = run([*args, "--config", "other.toml"], capsys)[2]
    assert err == f"using settings from {clean_env / 'other.toml'}\n"
    monkeypatch.setenv("DIGEST_CONFIG", "other.toml")
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "https://list.harbour.example")
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:///other.db")
    err = run(args, capsys)[2]
    assert err == (
        f"using settings from {clean_env / 'other.toml'} "
        "and DIGEST_DATABASE_URL, DIGEST_WEB__PUBLIC_URL\n"
    )


def test_a_missing_named_file_is_only_the_error(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config naming no file: the loader's error alone, no notice before it."""
    code, _, err = run(["new", "2017-11-02", "--config", "missing.toml"], capsys)
    assert code == 1
    assert err.startswith("error: settings file missing.toml does not exist")


@pytest.mark.parametrize(
    "args",
    [
        ["subscribers", "list"],
        ["check", "2017-11-02"],
        ["preview", "2017-11-02", "--format", "text"],
        ["reads", "list", "--date", "2017-11-02"],
        ["schedule", "list"],
    ],
)
def test_read_only_commands_stay_quiet(
    clean_env: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """Commands that only read print nothing on stderr, digest.toml or not."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    code, _, err = run(args, capsys)
    assert code == 0 and err == ""


def test_help_stays_quiet(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--help of a writing command prints its help and no notice."""
    code, out, err = run(["subscribers", "add", "--help"], capsys)
    assert code == 0 and "Usage" in out and err == ""
    assert "using settings" not in out and "digest init" not in out
