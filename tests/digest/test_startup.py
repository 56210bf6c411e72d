"""``digest --help`` and every command's ``--help`` load none of the application's weight.

Each command imports what it runs on (SQLAlchemy, Alembic, the renderer, the feedback
parsers, the web server, the scheduler) when it runs, so asking for help, the
version or a command's options starts in a fraction of the time. Checked by the
modules a fresh process has loaded, never by a clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.database import MIGRATIONS, migrate, open_database
from subscribers.db import Database, single_head
from tests.helpers import ROOT, scenario_settings, send_scenario

#: What no help or version output needs: the database, migrations, web server,
#: renderer, feed and mail parsers, scheduler, settings loader.
HEAVY = (
    "alembic",
    "apscheduler",
    "aiosmtpd",
    "dkim",
    "email_validator",
    "fastapi",
    "feedparser",
    "imap_tools",
    "jinja2",
    "lxml",
    "mailparser_reply",
    "mjml",
    "premailer",
    "pydantic_settings",
    "sqlalchemy",
    "starlette",
    "tomlkit",
    "uvicorn",
    "yaml",
    "digest.database",
    "digest.ledger",
    "digest.render",
    "digest.send",
    "digest.settings",
)

#: Run each argument list as `digest ARGS` in one fresh process, then name every module it loaded.
_PROBE = """
import json, sys
from digest.cli.app import main
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(*runs: list[str], shows: str = "Usage", env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh ``digest`` process has imported after the runs given."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(runs)],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert shows in done.stdout, done.stdout
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(modules)


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


#: What no help needs either: help is click's plain text, not drawn with Rich (whose
#: Markdown parser Typer's Rich help imports), and the version is looked up only when asked.
NOT_FOR_HELP = ("rich", "markdown_it", "pygments", "importlib.metadata", "pydantic")


def test_help_and_version_load_nothing_of_the_application() -> None:
    modules = loaded(["--help"], ["--version"], ["subscribers", "--help"])
    assert "digest.cli.app" in modules  # the probe ran the real command
    assert heavy(modules) == []
    assert named(modules, ("rich", "markdown_it", "pygments", "pydantic")) == []


def test_help_loads_neither_rich_nor_the_version_lookup() -> None:
    assert named(loaded(["--help"]), NOT_FOR_HELP) == []


def named(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``names`` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


@pytest.mark.parametrize(
    "command", ["status", "subscribers list", "feedback list", "schedule list"]
)
def test_a_command_s_help_loads_nothing_of_what_it_runs_on(command: str) -> None:
    modules = loaded([*command.split(), "--help"])
    assert heavy(modules) == []
    assert named(modules, NOT_FOR_HELP) == []


def test_only_the_command_run_is_built() -> None:
    """Typer reads every parameter's annotations as it builds a command: `digest status`
    builds `status` alone, and the top-level help each group without its commands."""
    from digest.cli.app import app
    from digest.cli.helptext import command

    assert list(command(app, ["status", "2017-11-02"]).commands) == ["status"]
    assert list(command(app, ["subscribers", "list"]).commands) == ["subscribers"]
    top = command(app, ["--help"])
    assert {"status", "send", "subscribers", "feedback"} <= set(top.commands)
    assert top.commands["subscribers"].commands == {}
    assert len(command(app).commands["subscribers"].commands) > 5  # all of it, for the tests


def test_no_command_s_help_loads_it() -> None:
    """Every command and group, hidden ones included, in one process."""
    from digest.cli.app import app
    from digest.cli.helptext import command
    from digest.cli.notice import commands

    paths = [path.split() for path, _ in commands(command(app))]
    groups = [["subscribers"], ["reads"], ["schedule"], ["feedback"]]
    assert len(paths) > 25
    assert heavy(loaded(*[[*path, "--help"] for path in paths + groups])) == []


#: What reading the ledger needs none of: migrations, the renderer, the send pipeline.
NOT_FOR_STATUS = (
    "alembic",
    "apscheduler",
    "fastapi",
    "feedparser",
    "jinja2",
    "lxml",
    "mjml",
    "premailer",
    "uvicorn",
    "yaml",
    "digest.render",
    "digest.send",
)


def test_status_reads_an_up_to_date_database_without_migrations_or_the_pipeline(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    send_scenario(db, scenario_settings(tmp_path, db_url), tmp_path)
    modules = loaded(
        ["status", "2017-11-02"], shows="readers' mail:", env={"DIGEST_DATABASE_URL": db_url}
    )
    assert "sqlalchemy" in modules  # it did read the database
    assert named(modules, NOT_FOR_STATUS) == []
    if db_url.startswith("sqlite"):  # the PostgreSQL dialect only when it is the database
        assert named(modules, ("sqlalchemy.dialects.postgresql",)) == []


def test_a_database_behind_the_migrations_is_still_migrated_on_open(
    db: Database, db_url: str
) -> None:
    head = single_head(MIGRATIONS)
    assert head is not None and head == max(
        p.name[:4] for p in (MIGRATIONS / "versions").glob("0*.py")
    )
    migrate(db.engine, f"{int(head) - 1:04d}", down=True)
    with open_database(db_url) as again, again.engine.connect() as connection:
        stamped = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert stamped == head


def test_a_history_with_two_heads_is_left_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, revision, parent in (
        ("a", "0001", None),
        ("b", "0002", "0001"),
        ("c", "0003", "0001"),
    ):
        down = f'"{parent}"' if parent else "None"
        (versions / f"{revision}_{name}.py").write_text(
            f'revision = "{revision}"\ndown_revision = {down}\n', encoding="utf-8"
        )
    assert single_head(tmp_path) is None
    (versions / "0003_c.py").write_text('revision = "0003"\ndown_revision = "0002"\n')
    assert single_head(tmp_path) == "0003"
