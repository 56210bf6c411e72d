"""The pages around the forms: the sign-up page's promise, the front page, the error pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from digest.database import open_database
from digest.settings import ScheduleSettings, Settings, WebSettings
from digest.web.public import create_app
from digest.web.server import background_server
from subscribers.db import Database
from tests.mailserver import free_port

SECRET = "pages-tests-secret-0123456789"
PUBLIC = "https://news.example.org"
#: What Chromium sends when it opens a page.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)


def _settings(tmp_path: Path, **schedule: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'digest.db'}",
        delivery_url=SecretStr(f"maildir:{tmp_path / 'outbox'}"),
        secret_key=SecretStr(SECRET),
        web=WebSettings(public_url=PUBLIC),
        schedule=ScheduleSettings.model_validate(schedule),
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = _settings(tmp_path)
    db = open_database(settings.database_url)
    try:
        with TestClient(create_app(settings, db), raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        db.close()


def _signup_text(browser: Any, tmp_path: Path, **schedule: Any) -> str:
    """The sign-up page's introduction as Chromium shows it, served by the real server."""
    port = free_port()
    web = background_server(_settings(tmp_path, **schedule), "127.0.0.1", port)
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/subscribe")
        return str(page.locator("main p").first.inner_text())
    finally:
        page.close()
        web.stop()


@pytest.mark.parametrize(
    ("schedule", "promise"),
    [
        ({"daily_at": "18:00"}, "every evening at 18:00 (Europe/London)"),
        (
            {"daily_at": "06:30", "timezone": "Europe/Berlin"},
            "every morning at 06:30 (Europe/Berlin)",
        ),
        ({"daily_at": "13:15", "policy": "approval"}, "every afternoon at 13:15 (Europe/London)"),
        (
            {"daily_at": "23:30", "timezone": "America/New_York"},
            "every day at 23:30 (America/New_York)",
        ),
    ],
)
def test_the_sign_up_page_promises_what_the_schedule_says(
    browser: Any, tmp_path: Path, schedule: dict[str, str], promise: str
) -> None:
    """Chromium: the page names the daily send's time and zone, not always "every morning"."""
    text = _signup_text(browser, tmp_path, **schedule)
    assert promise in text, text
    if "morning" not in promise:
        assert "morning" not in text, text


def test_without_a_daily_send_the_sign_up_page_promises_no_time(
    browser: Any, tmp_path: Path
) -> None:
    """Chromium: with policy "off" there is no daily send, so no time and no "every …"."""
    text = _signup_text(browser, tmp_path, policy="off", daily_at="07:00")
    assert "The day's essential news and our recommended reads" in text, text
    for promise in ("every", "morning", "07:00", "Europe/London"):
        assert promise not in text, text


def test_the_front_page_leads_to_the_sign_up_page(browser: Any, tmp_path: Path) -> None:
    """Chromium: `/` is a page (not JSON) whose link opens the sign-up form."""
    port = free_port()
    web = background_server(_settings(tmp_path, daily_at="18:00"), "127.0.0.1", port)
    page = browser.new_page()
    try:
        response = page.goto(f"http://127.0.0.1:{port}/")
        assert response is not None and response.status == 200
        assert page.locator("h1").inner_text() == "The Morning Ledger"
        assert "every evening at 18:00 (Europe/London)" in page.locator("main").inner_text()
        page.get_by_role("link", name="Sign up").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Get The Morning Ledger by email"
    finally:
        page.close()
        web.stop()


def test_a_browser_gets_an_html_page_for_a_missing_one(browser: Any, tmp_path: Path) -> None:
    """Chromium: a mistyped address shows a page saying so, with the way to sign up."""
    port = free_port()
    web = background_server(_settings(tmp_path), "127.0.0.1", port)
    page = browser.new_page()
    try:
        response = page.goto(f"http://127.0.0.1:{port}/subscrbe")
        assert response is not None and response.status == 404
        assert page.locator("h1").inner_text() == "Page not found"
        assert "detail" not in page.locator("body").inner_text()
        assert page.get_by_role("link", name="Sign up for The Morning Ledger").count() == 1
    finally:
        page.close()
        web.stop()


def test_the_front_page_and_its_head(client: TestClient) -> None:
    """`/` answers a page with a link to the form, carrying the security headers."""
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/subscribe"' in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert client.head("/").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "title"),
    [
        ("GET", "/no-such-page", 404, "Page not found"),
        ("DELETE", "/subscribe", 405, "This page can&#39;t do that"),
        ("POST", "/healthz", 405, "This page can&#39;t do that"),
    ],
)
def test_error_pages_are_html_for_browsers_and_json_for_clients(
    client: TestClient, method: str, path: str, status: int, title: str
) -> None:
    """The same error, asked by a browser and by a JSON client; both with the headers."""
    page = client.request(method, path, headers={"accept": BROWSER_ACCEPT})
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["cache-control"] == "no-store"
    for accept in ("application/json", "*/*", "text/html;q=0.5, application/json"):
        data = client.request(method, path, headers={"accept": accept})
        assert data.status_code == status
        assert data.headers["content-type"] == "application/json", accept
        assert "detail" in data.json()
        assert data.headers["x-frame-options"] == "DENY"
    if status == 405:
        assert page.headers["allow"] == data.headers["allow"]
    assert client.request(method, path, headers={"accept": "text/html;;;"}).status_code == status


def test_a_validation_error_is_a_page_for_a_browser(tmp_path: Path) -> None:
    """An unparseable form (422 or 400) is a page for a browser, JSON for a client."""
    settings = _settings(tmp_path)
    db = open_database(settings.database_url)
    try:
        app = create_app(settings, db)

        @app.get("/numbered/{number}")
        def numbered(number: int) -> int:  # only here to provoke a validation error
            return number

        with TestClient(app) as client:
            page = client.get("/numbered/x", headers={"accept": BROWSER_ACCEPT})
            data = client.get("/numbered/x", headers={"accept": "application/json"})
    finally:
        db.close()
    assert page.status_code == data.status_code == 422
    assert "<h1>The request could not be read</h1>" in page.text
    assert data.json()["detail"][0]["loc"] == ["path", "number"]


def test_a_500_is_a_page_for_a_browser_and_json_for_a_client(tmp_path: Path) -> None:
    """A database without its tables fails the sign-up: a page or JSON, with the headers."""
    settings = _settings(tmp_path)
    broken: Database = open_database(f"sqlite:///{tmp_path / 'empty.db'}", apply_migrations=False)
    try:
        app = create_app(settings, broken)
        with TestClient(app, raise_server_exceptions=False) as client:
            form = {"email": "ann@example.org", "name": "", "website": ""}
            page = client.post(
                "/subscribe", data=form, headers={"origin": PUBLIC, "accept": BROWSER_ACCEPT}
            )
            data = client.post(
                "/subscribe", data=form, headers={"origin": PUBLIC, "accept": "application/json"}
            )
    finally:
        broken.close()
    assert page.status_code == data.status_code == 500
    assert "<h1>Something went wrong on our side</h1>" in page.text
    assert page.headers["x-frame-options"] == data.headers["x-frame-options"] == "DENY"
    assert data.json() == {"detail": "Internal Server Error"}
