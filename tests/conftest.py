"""Shared fixtures. A test that needs an absent service skips, unless CI requires it.

Plain helpers (paths, `need_service`, the CLI runner, scenarios) are in tests/helpers.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.edition.files import EXAMPLE_EDITION
from digest.edition.model import Edition
from digest.edition.parse import load_edition
from digest.render.renderer import RenderedEdition, Renderer, render_edition
from digest.settings import Publication


@pytest.fixture(scope="session")
def publication() -> Publication:
    return Publication()


@pytest.fixture(scope="session")
def renderer(publication: Publication) -> Renderer:
    return Renderer.create(publication)


@pytest.fixture(scope="session")
def example() -> Edition:
    return load_edition(EXAMPLE_EDITION)


@pytest.fixture(scope="session")
def example_rendered(renderer: Renderer, example: Edition) -> RenderedEdition:
    return render_edition(renderer, example)


def edition_text(body: str, front: str = "date: 2017-11-02\n") -> str:
    """An edition file's text from its front matter lines and Markdown body."""
    return f"---\n{front}---\n{body}"


#: DIGEST_* variables that steer the test run itself, not the publisher's settings.
TEST_RUN_VARIABLES = frozenset(
    {
        "DIGEST_REQUIRE_SERVICES",
        "DIGEST_TEST_POSTGRES_URL",
        "DIGEST_TEST_ARTIFACTS",
        "DIGEST_UPDATE_GOLDEN",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    """A DIGEST_* setting exported in the developer's shell must not change any outcome.

    Removed before any test module is imported, so module-level ``Settings(...)``
    and session fixtures don't see them either.
    """
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in TEST_RUN_VARIABLES:
            del os.environ[name]


@pytest.fixture(autouse=True)
def _no_shell_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nor one a test set without monkeypatch and left behind for the next test."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in TEST_RUN_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty folder with no DIGEST_* settings from the outer environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_TEST_POSTGRES_URL", raising=False)
    return tmp_path


# Database fixtures (SQLite and the real PostgreSQL server) for every test folder.
from tests.databases import clock, db, db_url, postgres_url  # noqa: E402, F401
from tests.dovecot import imap, imap_server  # noqa: E402, F401
from tests.mailserver import smtp_server  # noqa: E402, F401
from tests.webserver import digest_serve, site  # noqa: E402, F401
