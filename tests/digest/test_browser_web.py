"""`digest serve` as a reader meets it: a real server process and headless Chromium."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digest.database import open_database
from digest.send.links import Links
from digest.settings import Settings
from subscribers import audience
from subscribers.models import Status
from tests.helpers import ARTIFACTS, wait_for
from tests.mailserver import free_port, text_part


@pytest.fixture
def server(clean_env: Path) -> Iterator[tuple[str, Path]]:
    """`digest serve` on a free port, with the default outbox and SQLite in a temp folder."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DIGEST_WEB__PUBLIC_URL": base}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from digest.cli.app import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=clean_env,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"digest serve exited: {output}") from None
                time.sleep(0.1)
        else:
            raise AssertionError("digest serve did not start")
        yield base, clean_env
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_reader_subscribes_confirms_and_leaves_in_a_browser(
    browser: Any,
    server: tuple[str, Path],
) -> None:
    """Form by label → email in the outbox → confirm link → unsubscribe button, all in Chromium."""
    base, folder = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(f"{base}/subscribe")
    assert page.get_attribute("#website", "tabindex") == "-1"  # the trap is out of tab order
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("Name").fill("Rea Der")
    page.screenshot(path=str(ARTIFACTS / "web-subscribe-375.png"), full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    def outbox() -> list[mailbox.MaildirMessage]:
        return list(mailbox.Maildir(folder / "outbox", create=True))

    wait_for(lambda: bool(outbox()), "the confirmation email (sent after the response)")
    [message] = outbox()
    assert message["Delivered-To"] == "reader@example.org"
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text = text_part(parsed)
    link = re.search(rf"{re.escape(base)}/confirm/\S+", text)
    assert link, text
    page.goto(link.group(0))
    assert page.locator("h1").inner_text() == "You are subscribed"

    settings = Settings(
        database_url=f"sqlite:///{folder / 'digest.db'}", secret_key_file=folder / "digest.secret"
    )
    db = open_database(settings.database_url)
    try:
        with db.transaction() as session:
            reader = audience.get(session, "reader@example.org")
            assert reader.status is Status.active and reader.name == "Rea Der"
            unsubscribe = Links.from_settings(settings).unsubscribe_url(reader)
        page.goto(unsubscribe.replace(settings.web.public_url, base))
        assert page.locator("h1").inner_text() == "Unsubscribe from The Morning Ledger?"
        page.screenshot(path=str(ARTIFACTS / "web-unsubscribe-375.png"), full_page=True)
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "You are unsubscribed"
        with db.transaction() as session:
            assert audience.get(session, "reader@example.org").status is Status.unsubscribed
    finally:
        db.close()
