"""`digest serve` as a reader meets it: a real server process and headless Chromium."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from email.message import EmailMessage
from typing import Any

from digest.database import open_database
from digest.send.links import Links
from digest.settings import Settings
from subscribers import audience
from subscribers.models import Status
from tests.helpers import ARTIFACTS, wait_for
from tests.mailserver import text_part
from tests.webserver import Served


def test_reader_subscribes_confirms_and_leaves_in_a_browser(
    browser: Any,
    digest_serve: Served,
) -> None:
    """Chromium: sign up, confirm by button (a GET alone confirms nothing), leave; a new sign-up voids the old link."""
    base, folder = digest_serve.base, digest_serve.folder
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
    settings = Settings(
        database_url=f"sqlite:///{folder / 'digest.db'}", secret_key_file=folder / "digest.secret"
    )
    db = open_database(settings.database_url)

    def status() -> Status:
        with db.transaction() as session:
            return audience.get(session, "reader@example.org").status

    try:
        page.goto(link.group(0))
        assert page.locator("h1").inner_text() == "Confirm your subscription to The Morning Ledger"
        assert status() is Status.pending  # the GET (what a mail scanner does) changed nothing
        page.screenshot(path=str(ARTIFACTS / "web-confirm-375.png"), full_page=True)
        page.get_by_role("button", name="Confirm my subscription").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "You are subscribed"

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
        assert status() is Status.unsubscribed

        page.goto(f"{base}/subscribe")  # signs up again: the first link is now stale
        page.get_by_label("Email address").fill("reader@example.org")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Check your inbox"
        assert status() is Status.pending
        page.goto(link.group(0))
        assert page.locator("h1").inner_text() == "This link has been replaced"
        assert page.get_by_role("button").count() == 0
        assert status() is Status.pending
    finally:
        db.close()
