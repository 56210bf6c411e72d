"""What the CLI says: every help text as written, a help for every parameter, plain
usage lines, ``--version``, and counts in English (``1 message``, ``2 messages``)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperArgument

from digest.cli.app import app
from digest.edition.files import EXAMPLE_EDITION
from digest.words import plural
from subscribers.db import Database
from tests.helpers import edition_text, run

BRACKETED = re.compile(r"\[[^\[\]]+\]")


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group of ``digest`` as it is written (help not yet prepared for
    showing), with the words that run it; hidden ones too. Typer ships its own copy of
    click, so a group is known by its ``commands``."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from commands(sub, (*path, name))


def help_texts(command: Any) -> list[str]:
    """The command's own help and every parameter's, as written in the source."""
    texts = [command.help or ""]
    return texts + [param.help or "" for param in command.params]


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal wide enough that no help line wraps."""
    monkeypatch.setenv("COLUMNS", "1000")


ALL = list(commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "digest" for p, _ in ALL])
def test_help_shows_every_bracketed_word_as_written(
    path: tuple[str, ...], command: Any, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`Port [web.port].` is not Rich markup: `--help` shows the brackets as typed, and
    no flag carries a `<bool>` type."""
    code, out, _ = run([*path, "--help"], capsys)
    assert code == 0
    for text in help_texts(command):
        for word in BRACKETED.findall(text):
            assert word in out, f"digest {' '.join(path)} --help lost {word!r}"
    assert "<bool>" not in out


def test_the_brackets_the_issue_named_are_back(
    wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The three help texts the newsroom quoted, in full."""
    assert "Interface to listen on [web.host]." in run(["serve", "--help"], capsys)[1]
    assert "SMTP connections [delivery.connections]." in run(["send", "--help"], capsys)[1]
    out = run(["preview", "--help"], capsys)[1]
    assert "Leave [[recipient fields]] unfilled" in out


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "digest" for p, _ in ALL])
def test_every_option_and_argument_has_a_help_text(path: tuple[str, ...], command: Any) -> None:
    """Words of its own, not only the setting it defaults to (`[feedback.listen_host]`)."""
    for param in command.params:
        words = BRACKETED.sub("", param.help or "").strip(" .")
        assert words, f"digest {' '.join(path)} {param.opts[0]} has no help text"


GROUPS = [(path, command) for path, command in ALL if getattr(command, "commands", None)]


@pytest.mark.parametrize(
    ("path", "group"), GROUPS, ids=[" ".join(p) or "digest" for p, _ in GROUPS]
)
def test_a_group_s_help_lists_each_command_with_its_whole_first_paragraph(
    path: tuple[str, ...], group: Any, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain help as click writes it would cut a command's line at 45 characters with
    `...`; the list shows the first paragraph of each command's help in full."""
    code, out, _ = run([*path, "--help"], capsys)
    assert code == 0
    listed = " ".join(out.split("Commands:")[1].split())
    for name, command in group.commands.items():
        if not command.hidden:
            first = " ".join((command.help or "").split("\n\n")[0].split())
            assert f"{name} {first}" in listed, f"digest {' '.join(path)} --help cut {name}"
    assert "..." not in listed


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "digest" for p, _ in ALL])
def test_usage_names_arguments_as_the_help_does(
    path: tuple[str, ...], command: Any, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`Usage: digest send [OPTIONS] SOURCE`: an argument in capitals, bare when required
    and in brackets when not, never Typer's `{source}`."""
    out = run([*path, "--help"], capsys)[1]
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage
    for param in command.params:
        if isinstance(param, TyperArgument):
            name = param.metavar or (param.name or "").upper()
            assert name.isupper()
            shown = name if param.required else f"[{name}]"
            assert re.search(rf"(^|\s){re.escape(shown)}(\s|$)", usage), usage


def test_schedule_help_says_how_to_schedule(wide: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`digest schedule SOURCE --at TIME` is the form people need; the help leads with it,
    then the commands that manage scheduled jobs."""
    code, out, _ = run(["schedule", "--help"], capsys)
    assert code == 0
    assert "Usage: digest schedule SOURCE --at TIME" in out
    assert "or: digest schedule COMMAND [ARGS]..." in out
    assert "[schedule.timezone]" in out
    for name in ("list", "cancel", "move"):
        assert re.search(rf"^  {name}\s", out.split("Commands:")[1], re.M), f"{name} is not listed"


def test_the_description_covers_the_whole_tool(
    wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only rendering: subscribers, sending, scheduling and readers' mail too."""
    out = run(["--help"], capsys)[1]
    description = out.split("Options:")[0]
    for part in ("edition", "subscriber", "send", "schedule", "replies", "bounces"):
        assert part in description, part


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`digest --version` prints the installed distribution's version and exits 0."""
    assert run(["--version"], capsys) == (0, f"digest {version('digest-publisher')}\n", "")


def test_plural() -> None:
    assert [plural(n, "reply", "replies") for n in (0, 1, 2, 1204)] == [
        "0 replies",
        "1 reply",
        "2 replies",
        "1,204 replies",
    ]


@pytest.fixture
def workdir(clean_env: Path) -> Path:
    """A working directory with an editions folder holding the example edition."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    return clean_env


def test_check_counts_warnings_and_problems_in_english(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`1 warning:`, `2 warnings:`, `the edition has 1 problem:`."""
    editions = workdir / "editions"
    (editions / "2017-11-05.md").write_text(
        edition_text("## Full\n\nText.\n", "date: 2017-11-05\n")
    )
    code, out, _ = run(["check", "2017-11-05"], capsys)
    assert code == 0 and "1 warning:" in out and "no 'summary:'" in out
    (editions / "2017-11-06.md").write_text(
        edition_text("## Empty\n\n## Full\n\nText.\n", "date: 2017-11-06\n")
    )
    code, out, _ = run(["check", "2017-11-06"], capsys)
    assert code == 0 and "2 warnings:" in out
    (editions / "2017-11-07.md").write_text(edition_text("## A\n\nText.\n", "date: 2017-11-08\n"))
    code, _, err = run(["check", "2017-11-07"], capsys)
    assert code == 1 and "error: the edition has 1 problem:" in err


def test_subscriber_counts_in_english(
    clean_env: Path,
    db: Database,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`1 row: 1 added`, `1 subscriber`, `exported 1 subscriber`; then the plurals."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    (clean_env / "one.csv").write_text("email,name\nann@example.org,Ann\n")
    code, out, _ = run(["subscribers", "import", "one.csv", "--confirmed"], capsys)
    assert code == 0 and "1 row: 1 added" in out
    assert run(["subscribers", "list"], capsys)[1].endswith("\n1 subscriber\n")
    code, _, err = run(["subscribers", "export", "out.csv"], capsys)
    assert code == 0 and "exported 1 subscriber to out.csv" in err
    (clean_env / "two.csv").write_text("email,name\nbo@example.org,Bo\ncy@example.org,Cy\n")
    code, out, _ = run(["subscribers", "import", "two.csv"], capsys)
    assert code == 0 and "2 rows: 2 added" in out
    assert "2 new subscribers are pending until they confirm." in out
    assert run(["subscribers", "list"], capsys)[1].endswith("\n3 subscribers\n")
