"""`digest serve`'s access log: every request is there, no confirm or unsubscribe token is."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

from digest.database import open_database
from digest.send.links import Links
from digest.settings import Settings
from digest.web.accesslog import hide_tokens
from subscribers import audience
from tests.helpers import wait_for
from tests.mailserver import text_part
from tests.webserver import Served


def _request(url: str, data: bytes | None = None, **headers: str) -> int:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _stopped_output(served: Served) -> str:
    """Everything the server printed, once it has stopped (so nothing is still buffered)."""
    served.process.terminate()
    served.process.wait(timeout=30)
    assert served.process.stdout is not None
    return served.process.stdout.read().decode()


def test_the_access_log_of_digest_serve_shows_no_token(digest_serve: Served) -> None:
    """A reader signs up, confirms and leaves: the log has each request, with the tokens cut."""
    base, folder = digest_serve.base, digest_serve.folder
    form = urllib.parse.urlencode({"email": "reader@example.org", "name": "", "website": ""})
    assert _request(f"{base}/subscribe", form.encode(), Origin=base) == 200

    def outbox() -> list[mailbox.MaildirMessage]:
        try:  # the server makes the Maildir's folders one by one: until then, nothing
            return list(mailbox.Maildir(folder / "outbox", create=False))
        except (FileNotFoundError, mailbox.NoSuchMailboxError):
            return []

    wait_for(lambda: bool(outbox()), "the confirmation email")
    message = email.message_from_bytes(outbox()[0].as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    match = re.search(rf"{re.escape(base)}/confirm/(\S+)", text_part(message))
    assert match
    confirm = match.group(1)
    assert _request(f"{base}/confirm/{confirm}") == 200
    assert _request(f"{base}/confirm/{confirm}", b"") == 200

    settings = Settings(
        database_url=f"sqlite:///{folder / 'digest.db'}", secret_key_file=folder / "digest.secret"
    )
    db = open_database(settings.database_url)
    try:
        with db.transaction() as session:
            reader = audience.get(session, "reader@example.org")
            leave_url = Links.from_settings(settings).unsubscribe_url(reader)
    finally:
        db.close()
    unsubscribe = leave_url.rsplit("/", 1)[1]
    assert _request(f"{base}/unsubscribe/{unsubscribe}?utm_source=email") == 200
    assert _request(f"{base}/unsubscribe/{unsubscribe}", b"List-Unsubscribe=One-Click") == 200
    assert _request(f"{base}/list/confirm/{confirm}") == 404  # a proxy that kept its prefix
    assert _request(f"{base}/confirm?token={confirm}&page=2") == 404
    assert _request(f"{base}/subscribe?ref={unsubscribe}") == 200  # a token pasted anywhere

    log = _stopped_output(digest_serve)
    for token in (confirm, unsubscribe):
        for part in token.split("."):
            assert part not in log, log
    expected = [
        '"POST /subscribe HTTP/1.1" 200',
        '"GET /confirm/[token] HTTP/1.1" 200',
        '"POST /confirm/[token] HTTP/1.1" 200',
        '"GET /unsubscribe/[token]?utm_source=email HTTP/1.1" 200',
        '"POST /unsubscribe/[token] HTTP/1.1" 200',
        '"GET /list/confirm/[token] HTTP/1.1" 404',
        '"GET /confirm?token=[token]&page=2 HTTP/1.1" 404',
        '"GET /subscribe?ref=[token] HTTP/1.1" 200',
    ]
    for line in expected:
        assert line in log, log


def test_paths_without_tokens_are_logged_as_they_are() -> None:
    """Only tokens are cut: ordinary paths and query values stay readable in the log."""
    assert hide_tokens("/subscribe") == "/subscribe"
    assert (
        hide_tokens("/archive/2017-11-02?page=2&q=harbour")
        == "/archive/2017-11-02?page=2&q=harbour"
    )
    assert hide_tokens("/confirm/") == "/confirm/"
    assert hide_tokens("/unsubscribe/abc/extra") == "/unsubscribe/[token]/extra"
    assert hide_tokens("/x?Token=abc&t=1") == "/x?Token=[token]&t=1"
