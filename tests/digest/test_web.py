"""The public endpoints on SQLite and PostgreSQL, mail going to a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from digest.settings import AudienceSettings, Settings, WebSettings
from digest.web.public import create_app
from subscribers import audience
from subscribers.db import Database
from subscribers.models import Consent, Status, Subscriber
from tests.mailserver import SMTPServer, text_part

SECRET = "web-tests-secret-0123456789"


def make_settings(smtp_server: SMTPServer, **overrides: Any) -> Settings:
    return Settings(
        delivery_url=SecretStr(smtp_server.url),
        secret_key=SecretStr(SECRET),
        web=WebSettings.model_validate(
            {"public_url": "https://news.example.org/list", **overrides.pop("web", {})}
        ),
        subscribers=AudienceSettings.model_validate(
            {"resend_minutes": 15, **overrides.pop("subscribers", {})}
        ),
        **overrides,
    )


@pytest.fixture
def client(db: Database, smtp_server: SMTPServer) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(smtp_server), db)) as test_client:
        yield test_client


def confirm_path(smtp_server: SMTPServer, index: int = -1) -> str:
    text = text_part(smtp_server.inbox.messages[index].message)
    match = re.search(r"https://news\.example\.org/list(/confirm/\S+)", text)
    assert match, text
    return match.group(1)


def status_of(db: Database, email: str) -> Status | None:
    with db.transaction() as session:
        found = audience.find(session, email)
        return found.status if found else None


def form_token(client: TestClient) -> str:
    """The token of a freshly loaded sign-up form (its cookie stays in the client)."""
    match = re.search(r'name="form_token" value="([^"]+)"', client.get("/subscribe").text)
    assert match
    return match.group(1)


def subscribe(client: TestClient, email: str, **form: str) -> Any:
    """Post the form as an old browser would: no Origin, so the form's token counts."""
    return client.post(
        "/subscribe",
        data={"email": email, "name": "", "website": "", "form_token": form_token(client), **form},
        headers={"user-agent": "TestBrowser/1.0"},
    )


def test_double_opt_in_through_the_form(
    client: TestClient, db: Database, smtp_server: SMTPServer
) -> None:
    """Sign up → one email at the SMTP server → its link makes the subscriber active."""
    form = client.get("/subscribe")
    assert form.status_code == 200 and 'name="website"' in form.text
    assert form.headers["referrer-policy"] == "no-referrer"
    response = subscribe(client, "Zoë.Reader@Example.org", name="Zoë")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert status_of(db, "zoë.reader@example.org") is Status.pending
    [received] = smtp_server.inbox.messages
    assert received.recipients == ["Zoë.Reader@Example.org"]
    assert received.message["Subject"] == "Confirm your subscription to The Morning Ledger"
    html = received.message.get_body(preferencelist=("html",))
    assert html is not None and "/confirm/" in str(html.get_content())
    button = client.get(confirm_path(smtp_server))  # what a mail scanner does: no change
    assert button.status_code == 200 and f'action="{confirm_path(smtp_server)}"' in button.text
    assert status_of(db, "zoë.reader@example.org") is Status.pending
    page = client.post(confirm_path(smtp_server))
    assert page.status_code == 200 and "You are subscribed" in page.text
    assert status_of(db, "zoë.reader@example.org") is Status.active
    with db.transaction() as session:
        consent = session.scalars(select(Consent)).one()
        assert (consent.method, consent.form_version) == ("web_form", "sign-up form v1")
        assert consent.ip == "testclient" and consent.user_agent == "TestBrowser/1.0"
        assert consent.confirmed_at is not None
    again = client.post(confirm_path(smtp_server))  # following it twice is harmless
    assert again.status_code == 200 and status_of(db, "zoë.reader@example.org") is Status.active
    assert "You are subscribed" in client.get(confirm_path(smtp_server)).text


def test_resubscribing_leaks_nothing_and_resends_only_after_the_interval(
    db: Database, smtp_server: SMTPServer
) -> None:
    """Pending: resent at most once per interval. Active: same page, no email."""
    settings = make_settings(smtp_server, subscribers={"resend_minutes": 10})
    with (
        time_machine.travel("2026-11-25 09:00:00+00:00", tick=False) as traveller,
        TestClient(create_app(settings, db)) as client,
    ):
        subscribe(client, "ann@example.org")
        subscribe(client, "ANN@example.org")
        assert len(smtp_server.inbox.messages) == 1  # rate-limited
        traveller.shift(11 * 60)
        subscribe(client, "ann@example.org")
        assert len(smtp_server.inbox.messages) == 2  # resent after the interval
        client.post(confirm_path(smtp_server))
        assert status_of(db, "ann@example.org") is Status.active
        traveller.shift(60 * 60)
        known = subscribe(client, "ann@example.org", name="Mallory")
        unknown = subscribe(client, "new.person@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text  # the page can't tell who is subscribed
    assert [m.recipients for m in smtp_server.inbox.messages][-1] == ["new.person@example.org"]
    assert len(smtp_server.inbox.messages) == 3  # none to the active address
    with db.transaction() as session:
        assert audience.get(session, "ann@example.org").name is None  # a form can't rename


def test_honeypot_rate_limit_and_bad_addresses(db: Database, smtp_server: SMTPServer) -> None:
    """Robots filling the trap get the normal page and nothing stored; floods get 429."""
    settings = make_settings(smtp_server, web={"subscribe_per_hour": 3})
    with TestClient(create_app(settings, db)) as client:
        trapped = subscribe(client, "bot@example.org", website="http://spam.example")
        assert trapped.status_code == 200 and "Check your inbox" in trapped.text
        assert status_of(db, "bot@example.org") is None
        bad = subscribe(client, "not an address")
        assert bad.status_code == 400 and 'role="alert"' in bad.text
        assert "not a valid email address" in bad.text and 'value="not an address"' in bad.text
        assert subscribe(client, "third@example.org").status_code == 200
        limited = subscribe(client, "fourth@example.org")  # junk counts towards the limit too
        assert limited.status_code == 429 and "Too many sign-ups" in limited.text
    assert status_of(db, "fourth@example.org") is None
    assert [m.recipients for m in smtp_server.inbox.messages] == [["third@example.org"]]


def _unsubscribe_path(client: TestClient, db: Database, email: str) -> str:
    with db.transaction() as session:
        subscriber = audience.get(session, email)
        url = client.app.state.site.links.unsubscribe_url(subscriber)  # type: ignore[attr-defined]
    return str(url).removeprefix("https://news.example.org/list")


def _add_active(db: Database, email: str) -> None:
    from subscribers.addresses import parse_address
    from subscribers.models import ConsentMethod

    with db.transaction() as session:
        audience.join(
            session,
            parse_address(email),
            datetime.now(UTC),
            audience.ConsentEvidence(ConsentMethod.editor),
            confirmed=True,
        )


def test_unsubscribe_page_button_and_one_click(client: TestClient, db: Database) -> None:
    """GET only shows a button; the button and an RFC 8058 POST both leave; both idempotent."""
    _add_active(db, "ann@example.org")
    _add_active(db, "bo@example.org")
    path = _unsubscribe_path(client, db, "ann@example.org")
    page = client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.text
    assert "ann@example.org" in page.text
    assert status_of(db, "ann@example.org") is Status.active  # a GET changes nothing
    left = client.post(path, data={})
    assert left.status_code == 200 and "You are unsubscribed" in left.text
    assert status_of(db, "ann@example.org") is Status.unsubscribed
    assert client.post(path, data={}).status_code == 200  # again: still fine
    assert "You are unsubscribed" in client.get(path).text

    one_click = _unsubscribe_path(client, db, "bo@example.org")
    response = client.post(
        one_click,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.text == "unsubscribed"
    assert status_of(db, "bo@example.org") is Status.unsubscribed
    with db.transaction() as session:
        history = audience.get(session, "bo@example.org").changes
        assert history[-1].reason == "one-click unsubscribe (RFC 8058)"


def test_tampered_and_expired_links_are_refused(db: Database, smtp_server: SMTPServer) -> None:
    """A changed token is 'not valid' and changes nothing; a stale confirm link is 'expired'."""
    settings = make_settings(smtp_server, subscribers={"confirm_days": 2})
    with (
        time_machine.travel("2026-11-25 09:00:00+00:00", tick=False) as traveller,
        TestClient(create_app(settings, db)) as client,
    ):
        _add_active(db, "ann@example.org")
        path = _unsubscribe_path(client, db, "ann@example.org")
        tampered = path[:-2] + ("xy" if not path.endswith("xy") else "zz")
        assert client.get(tampered).status_code == 404
        assert client.post(tampered, data={}).status_code == 404
        one_click = client.post(tampered, content=b"List-Unsubscribe=One-Click")
        assert one_click.status_code == 400
        assert client.get(path.replace("/unsubscribe/", "/confirm/")).status_code == 404
        assert status_of(db, "ann@example.org") is Status.active

        subscribe(client, "late@example.org")
        link = confirm_path(smtp_server)
        traveller.shift(2 * 86_400 + 60)
        expired = client.get(link)
        assert expired.status_code == 410 and "expired" in expired.text
        assert client.post(link).status_code == 410
        assert status_of(db, "late@example.org") is Status.pending


def test_erased_person_can_come_back_only_by_confirming(
    client: TestClient, db: Database, smtp_server: SMTPServer
) -> None:
    """After an erase, imports can't re-add the address, but the person's own opt-in can."""
    _add_active(db, "ann@example.org")
    with db.transaction() as session:
        audience.erase(session, "ann@example.org", datetime.now(UTC))
    subscribe(client, "ann@example.org")
    assert status_of(db, "ann@example.org") is Status.pending
    client.post(confirm_path(smtp_server))
    assert status_of(db, "ann@example.org") is Status.active
    with db.transaction() as session:
        assert not audience.is_suppressed(session, "ann@example.org")
        assert session.scalars(select(Subscriber)).one().email == "ann@example.org"


def test_a_confirm_link_belongs_to_its_sign_up(
    client: TestClient, db: Database, smtp_server: SMTPServer
) -> None:
    """After unsubscribing and signing up again, the first link neither confirms nor shows a button."""
    subscribe(client, "ann@example.org")
    first = confirm_path(smtp_server)
    with db.transaction() as session:
        url = client.app.state.site.links.unsubscribe_url(  # type: ignore[attr-defined]
            audience.get(session, "ann@example.org")
        )
    client.post(url.removeprefix("https://news.example.org/list"), data={})
    left = client.get(first)
    assert left.status_code == 410 and "You left the list" in left.text
    subscribe(
        client, "ann@example.org"
    )  # within resend_minutes: a new sign-up still gets its email
    assert len(smtp_server.inbox.messages) == 2
    second = confirm_path(smtp_server)
    assert second != first and status_of(db, "ann@example.org") is Status.pending
    for stale in (client.get(first), client.post(first)):
        assert stale.status_code == 410 and "This link has been replaced" in stale.text
        assert "<button" not in stale.text
    assert status_of(db, "ann@example.org") is Status.pending
    assert "You are subscribed" in client.post(second).text
    assert status_of(db, "ann@example.org") is Status.active
    assert client.post(first).status_code == 410  # still void once active


def test_links_from_before_sign_ups_were_named(db: Database, smtp_server: SMTPServer) -> None:
    """An old-style link (no sign-up in it) confirms its own sign-up but not a later one."""
    from itsdangerous import URLSafeTimedSerializer

    from subscribers.tokens import fingerprint

    old_style = URLSafeTimedSerializer(SECRET, salt="digest.subscribers.confirm")
    settings = make_settings(smtp_server, subscribers={"resend_minutes": 0})
    with (
        time_machine.travel("2026-11-25 09:00:00+00:00", tick=False) as traveller,
        TestClient(create_app(settings, db)) as client,
    ):
        subscribe(client, "ann@example.org")
        with db.transaction() as session:
            ann = audience.get(session, "ann@example.org")
            ann_id = ann.id
            token = old_style.dumps([ann.id, fingerprint(ann.email_key)])
        traveller.shift(60)
        with db.transaction() as session:
            ann = audience.get(session, "ann@example.org")
            audience.unsubscribe(session, ann, datetime.now(UTC), "left")
        traveller.shift(60)
        subscribe(client, "ann@example.org")
        stale = client.post(f"/confirm/{token}")
        assert stale.status_code == 410 and "replaced" in stale.text
        assert status_of(db, "ann@example.org") is Status.pending
        traveller.shift(60)
        fresh = old_style.dumps([ann_id, fingerprint("ann@example.org")])
        assert "You are subscribed" in client.post(f"/confirm/{fresh}").text
        assert status_of(db, "ann@example.org") is Status.active
