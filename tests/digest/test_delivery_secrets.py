"""The delivery URL's password never shows, and real mail waits for real links."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.edition.files import EXAMPLE_EDITION
from digest.errors import FetchError, TransportError
from digest.feedback.imap import ImapAddress
from digest.ledger import Delivery
from digest.schedule import jobs
from digest.send.transport import is_loopback_url, open_transport
from digest.settings import load_settings, redact_url
from subscribers.db import Database
from tests.helpers import run
from tests.mailserver import SMTPServer, free_port

PASSWORD = "hunter2"
PUBLIC = "https://list.news.example.org"


@pytest.fixture
def office(clean_env: Path, db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on the test database with the example edition, an editor to tell, and
    a public URL readers can reach."""
    (clean_env / "editions").mkdir()
    shutil.copy(EXAMPLE_EDITION, clean_env / "editions" / "2017-11-02.md")
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "secrets-tests-secret-0123")
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("DIGEST_SCHEDULE__EDITORS", '["desk@news.example.org"]')
    monkeypatch.setenv("DIGEST_DELIVERY__RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("DIGEST_DELIVERY__RETRY_MAX_SECONDS", "0.1")
    return clean_env


def reader(capsys: pytest.CaptureFixture[str]) -> None:
    """One active subscriber, added as an editor would."""
    code, _, err = run(["subscribers", "add", "ann@example.org", "--confirmed"], capsys)
    assert code == 0, err


def deliveries(db: Database) -> list[Delivery]:
    with db.transaction() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        session.expunge_all()
    return rows


@pytest.mark.parametrize(
    "url",
    [
        f"smtp://u:{PASSWORD}@relay.example.org:99999",  # a port out of range
        f"smtp://u:{PASSWORD[:3]}/{PASSWORD[3:]}@relay.example.org",  # an unencoded /
        f"smtp://u:12#{PASSWORD}@relay.example.org",  # an unencoded #, digits first
        f"smtp://u:{PASSWORD}@[::1",  # not a URL at all
        f"smpt://u:{PASSWORD}@relay.example.org",  # no such scheme
        "smtp://u:{password}@127.0.0.1:{port}",  # a refused connection
    ],
)
def test_the_smtp_password_never_shows(
    office: Path,
    db: Database,
    url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever is wrong with the delivery URL, no part of the password appears in what
    `digest send` (a send, a test send), `digest status`, `digest subscribers add` or the
    scheduler's job and its notice to the editors print or log."""
    url = url.format(password=PASSWORD, port=free_port())
    monkeypatch.setenv("DIGEST_DELIVERY_URL", url)
    reader(capsys)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for args in (
        ["send", "2017-11-02", "--no-wait"],
        ["status", "2017-11-02"],
        ["status", "2017-11-02", "--format", "json"],
        ["send", "2017-11-02", "--to", "editor@news.example.org"],
        ["subscribers", "add", "bo@example.org"],
    ):
        _, out, err = run(args, capsys)
        seen.append(out + err)
    jobs.scheduled_send("2017-11-02", "2017-11-02")
    seen.append(caplog.text)
    everything = "\n".join(seen)
    assert "error:" in everything  # something was wrong, and said so
    for part in (PASSWORD, PASSWORD[:3], PASSWORD[3:]):
        assert part not in everything
    assert PASSWORD not in repr(load_settings())


def test_a_refused_connection_is_reported_by_host_only(
    office: Path,
    db: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the relay down, the send stops before freezing anything and its reason names
    the server by host and port, without the password."""
    port = free_port()
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"smtp://u:{PASSWORD}@127.0.0.1:{port}")
    reader(capsys)
    code, out, err = run(["send", "2017-11-02", "--no-wait"], capsys)
    assert code == 1
    assert f"connection refused by 127.0.0.1:{port}" in err
    assert deliveries(db) == []
    assert PASSWORD not in out + err


def test_redact_url_hides_every_password_and_nothing_else() -> None:
    """Only the text between the user name's ':' and the last '@' is hidden."""
    assert redact_url("smtp://u:hunter2@host:25") == "smtp://u:***@host:25"
    assert redact_url("smtp://u:hun/ter2@host") == "smtp://u:***@host"
    assert redact_url("smtp://u:hunt@r2@host") == "smtp://u:***@host"
    assert redact_url("imaps://digest:pw@mail.example.org/INBOX") == (
        "imaps://digest:***@mail.example.org/INBOX"
    )
    assert redact_url("bogus:u:hunter2@x") == "bogus:u:***@x"
    for plain in ("maildir:outbox", "maildir:///var/mail@home", "smtp://relay:25", "smtp://u@h"):
        assert redact_url(plain) == plain


def test_the_imap_url_is_redacted_by_the_same_helper() -> None:
    """A malformed IMAP URL is quoted in the error with its password hidden."""
    with pytest.raises(FetchError) as caught:
        ImapAddress.parse(f"imap://u:{PASSWORD[:3]}/{PASSWORD[3:]}@mail.example.org")
    assert "imap://u:***@mail.example.org" in str(caught.value)
    assert PASSWORD[:3] not in str(caught.value) and PASSWORD[3:] not in str(caught.value)


def test_an_invalid_url_in_open_transport_is_redacted() -> None:
    """open_transport's own errors show the URL redacted, even when urlsplit fails."""
    for url in (f"smtp://u:{PASSWORD}@host:99999", f"smtp://u:{PASSWORD}@[::1"):
        with pytest.raises(TransportError) as caught:
            open_transport(url)
        assert "u:***@" in str(caught.value) and PASSWORD not in str(caught.value)
        assert caught.value.__cause__ is None  # no chained error quoting the URL


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.10", True),
        ("http://localhost:8000/list", True),
        ("http://LocalHost.", True),
        ("http://news.localhost", True),
        ("http://[::1]:8000", True),
        ("http://[::ffff:127.0.0.1]", True),
        ("http://0.0.0.0:8000", True),
        ("https://news.example.org/list", False),
        ("https://192.0.2.10", False),
        ("https://[2001:db8::1]", False),
        ("https://localhost.example.org", False),
    ],
)
def test_loopback_public_urls_are_recognised(url: str, loopback: bool) -> None:
    """localhost, 127.0.0.0/8 and ::1 are loopback; public names and addresses are not."""
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:8000", "http://localhost:8000"])
def test_smtp_is_refused_while_links_point_at_this_machine(
    office: Path,
    db: Database,
    smtp_server: SMTPServer,
    public_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A send, a test send, a confirmation email and the scheduler's send are refused
    over SMTP with an error naming web.public_url; nothing reaches the server. The
    editors are still told, and a Maildir outbox is not refused."""
    monkeypatch.setenv("DIGEST_DELIVERY_URL", smtp_server.url)
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", public_url)
    reader(capsys)
    for args in (
        ["send", "2017-11-02"],
        ["send", "2017-11-02", "--to", "editor@news.example.org"],
        ["subscribers", "add", "bo@example.org"],
    ):
        code, _, err = run(args, capsys)
        assert code == 1, args
        assert f"web.public_url is {public_url}, a loopback address" in err
        assert "DIGEST_WEB__PUBLIC_URL" in err and "unsubscribe links" in err
    assert smtp_server.inbox.messages == []
    jobs.scheduled_send("2017-11-02", "2017-11-02")
    assert "a loopback address" in caplog.text
    [notice] = smtp_server.inbox.messages  # told to the editors, over SMTP still
    assert notice.recipients == ["desk@news.example.org"]
    assert "did not go out" in str(notice.message["Subject"])
    assert deliveries(db) == []  # refused before anything was frozen

    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"maildir:{office / 'outbox'}")
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "1 sent via the Maildir outbox" in out
