"""Fixtures more than one module of tests/digest uses: a headless browser, a CLI desk."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.edition.files import EXAMPLE_EDITION
from subscribers.db import Database
from tests.helpers import need_service
from tests.mailserver import SMTPServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, one per test module."""
    need_service(
        Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def desk(
    clean_env: Path,
    db: Database,
    db_url: str,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The CLI pointed at the test database and the SMTP server, with the example edition."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_DELIVERY_URL", smtp_server.url)
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "https://list.news.example.org")  # not loopback
    monkeypatch.setenv("DIGEST_DELIVERY__RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("DIGEST_DELIVERY__RETRY_MAX_SECONDS", "0.1")
    return clean_env
