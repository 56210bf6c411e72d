"""The public pages against hostile input: huge bodies, cross-site posts, floods, odd names."""

from __future__ import annotations

import http.client
import re
import select
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from digest.database import open_database
from digest.settings import Settings, WebSettings
from digest.web.asgi import MAX_BODY_BYTES
from digest.web.public import create_app
from digest.web.ratelimit import RateLimiter, client_key
from subscribers import audience
from subscribers.addresses import clean_name
from subscribers.db import Database
from subscribers.models import Status
from tests.mailserver import SMTPServer
from tests.webserver import Served

SECRET = "hostile-tests-secret-0123456789"
PUBLIC = "https://news.example.org"
MIB = 1024 * 1024


def _settings(smtp_server: SMTPServer) -> Settings:
    return Settings(
        delivery_url=SecretStr(smtp_server.url),
        secret_key=SecretStr(SECRET),
        web=WebSettings(public_url=PUBLIC, subscribe_per_hour=1000),
    )


@pytest.fixture
def client(db: Database, smtp_server: SMTPServer) -> Any:
    with TestClient(create_app(_settings(smtp_server), db)) as test_client:
        yield test_client


def _form(email: str, **fields: str) -> dict[str, str]:
    return {"email": email, "name": "", "website": "", **fields}


def _status(db: Database, email: str) -> Status | None:
    with db.transaction() as session:
        found = audience.find(session, email)
        return found.status if found else None


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def _read_status(sock: socket.socket) -> int:
    """The status of the response on ``sock``; a server that never answers fails the test."""
    sock.settimeout(120)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response.status


def _address(served: Served) -> tuple[str, int]:
    parts = urlsplit(served.base)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def test_a_declared_huge_body_gets_413_at_once(digest_serve: Served) -> None:
    """A Content-Length of 1 GiB is answered 413 without waiting for (or reading) the body."""
    with socket.create_connection(_address(digest_serve)) as sock:
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        assert _read_status(sock) == 413


def test_a_streamed_huge_body_is_cut_off_with_bounded_memory(digest_serve: Served) -> None:
    """A chunked 128 MiB POST gets 413 once past the cap; the server's peak RSS hardly moves."""
    before = _peak_rss_kib(digest_serve.process.pid)
    chunk = b"%x\r\n%s\r\n" % (MIB, b"a" * MIB)
    with socket.create_connection(_address(digest_serve)) as sock:
        sock.sendall(
            b"POST /unsubscribe/anything HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        )
        for _ in range(128):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server has answered: stop sending
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            sock.sendall(b"0\r\n\r\n")
        assert _read_status(sock) == 413
    grown = _peak_rss_kib(digest_serve.process.pid) - before
    assert grown < 48 * 1024, f"the server grew by {grown // 1024} MiB"
    with socket.create_connection(_address(digest_serve)) as sock:  # and it still serves
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_status(sock) == 200


def test_bodies_under_the_cap_pass_and_one_over_is_refused(
    client: TestClient, db: Database
) -> None:
    """The cap is on the body as a whole, whatever the route; the one-click POST still works."""
    over = client.post("/subscribe", content=b"email=" + b"a" * MAX_BODY_BYTES)
    assert over.status_code == 413 and over.headers["x-frame-options"] == "DENY"
    refused = client.post("/unsubscribe/x", content=b"List-Unsubscribe=One-Click" * 1000)
    assert refused.status_code == 413
    assert client.post("/unsubscribe/x", content=b"List-Unsubscribe=One-Click").status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://news.example.org.evil.example"},
        {"origin": "null", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
def test_cross_site_sign_ups_are_refused(
    client: TestClient, db: Database, headers: dict[str, str]
) -> None:
    """A post another site made the visitor's browser send is refused and stores nothing."""
    response = client.post("/subscribe", data=_form("victim@example.org"), headers=headers)
    assert response.status_code == 403 and "another website" in response.text
    assert _status(db, "victim@example.org") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": PUBLIC},
        {"origin": "http://testserver"},  # the Host the request came to
        {"origin": "null", "sec-fetch-site": "same-origin"},  # under Referrer-Policy: no-referrer
        {"sec-fetch-site": "none"},
    ],
)
def test_same_site_sign_ups_need_no_token(
    client: TestClient, db: Database, headers: dict[str, str]
) -> None:
    """A browser that says the post came from our own page is believed without the form's token."""
    response = client.post("/subscribe", data=_form("ann@example.org"), headers=headers)
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert _status(db, "ann@example.org") is Status.pending


def test_without_browser_signals_the_form_token_must_match_the_cookie(
    db: Database, smtp_server: SMTPServer
) -> None:
    """No Origin: no token, or another visitor's token, is refused; the form's own one passes."""
    app = create_app(_settings(smtp_server), db)
    with TestClient(app) as mine, TestClient(app) as theirs:
        token = re.findall(r'name="form_token" value="([^"]+)"', mine.get("/subscribe").text)[0]
        theirs.get("/subscribe")  # a cookie of its own
        for client, fields in ((mine, {}), (theirs, {"form_token": token})):
            refused = client.post("/subscribe", data=_form("ann@example.org", **fields))
            assert refused.status_code == 400 and "press Subscribe again" in refused.text
        assert _status(db, "ann@example.org") is None
        taken = mine.post("/subscribe", data=_form("ann@example.org", form_token=token))
        assert taken.status_code == 200 and _status(db, "ann@example.org") is Status.pending
        assert "samesite=strict" in mine.get("/subscribe").headers["set-cookie"].lower()


def test_over_long_fields_get_the_form_with_a_message(client: TestClient, db: Database) -> None:
    """An over-long email or name gets the form page with a clear message, not JSON 422."""
    same_site = {"origin": PUBLIC}
    long_email = "a" * 400 + "@example.org"
    response = client.post("/subscribe", data=_form(long_email), headers=same_site)
    assert response.status_code == 400 and "text/html" in response.headers["content-type"]
    assert "longer than 320 characters" in response.text and 'role="alert"' in response.text
    named = client.post(
        "/subscribe", data=_form("ann@example.org", name="N" * 201), headers=same_site
    )
    assert named.status_code == 400 and "The name is longer than 200 characters" in named.text
    assert re.search(r'id="name"[^>]*aria-invalid="true"', named.text)
    assert _status(db, "ann@example.org") is None


def test_control_characters_in_a_name_are_cleaned_on_every_database(
    client: TestClient, db: Database
) -> None:
    """A NUL (refused by PostgreSQL) and CR/LF in a sign-up name become spaces, not a 500."""
    name = "Rea\x00Der\r\nBcc: x@evil.example"
    response = client.post(
        "/subscribe", data=_form("ann@example.org", name=name), headers={"origin": PUBLIC}
    )
    assert response.status_code == 200
    with db.transaction() as session:
        assert audience.get(session, "ann@example.org").name == "Rea Der Bcc: x@evil.example"
    assert clean_name("\x1b[31m\u2028") == "[31m"
    assert clean_name("Ann  Lee") == "Ann  Lee"  # no control characters: as it was


def test_a_500_page_carries_the_security_headers(tmp_path: Path, smtp_server: SMTPServer) -> None:
    """A database without its tables gives a 500, and it too forbids framing and caching."""
    broken = open_database(f"sqlite:///{tmp_path / 'empty.db'}", apply_migrations=False)
    try:
        app = create_app(_settings(smtp_server), broken)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post(
                "/subscribe", data=_form("ann@example.org"), headers={"origin": PUBLIC}
            )
    finally:
        broken.close()
    assert response.status_code == 500
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_limit_counts_an_ipv6_network_not_an_address() -> None:
    """Addresses in one /64 share one limit; another /64 and IPv4 count on their own."""
    limiter = RateLimiter(2, 3600.0, clock=lambda: 0.0)
    assert limiter.allow("2001:db8:1:2::1") and limiter.allow("2001:db8:1:2:ffff::9")
    assert not limiter.allow("2001:db8:1:2:abcd::7")  # rotating within the /64 does not help
    assert limiter.allow("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"


def test_the_limiter_forgets_idle_clients_and_keeps_a_bounded_number() -> None:
    """Clients idle for a window are dropped; a flood of new ones never exceeds max_keys."""
    now = [0.0]
    limiter = RateLimiter(1, 60.0, clock=lambda: now[0], max_keys=1000)
    for number in range(5000):
        now[0] += 0.001
        assert limiter.allow(f"10.0.{number // 256}.{number % 256}")
    assert len(limiter) == 1000
    assert not limiter.allow("10.0.19.135")  # the newest are kept, and still limited
    now[0] += 61
    assert limiter.allow("192.0.2.1") and len(limiter) == 1
