from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.errors import TransportError
from digest.send.message import build_message, new_message_id, to_bytes
from digest.send.message import mailbox as address
from digest.send.transport import (
    MaildirTransport,
    SMTPTransport,
    open_transport,
)
from tests.mailserver import SMTPServer, free_port, text_part

NOW = datetime(2017, 11, 2, 7, 0, tzinfo=UTC)


def _message(to: str, name: str = "Reader", subject: str = "Hello") -> bytes:
    return to_bytes(_email(to, name, subject), "briefing@news.example.org", to)


def _email(to: str, name: str, subject: str) -> EmailMessage:
    return build_message(
        sender=address("The Ledger", "briefing@news.example.org"),
        to=address(name, to),
        subject=subject,
        text="Plain words.\n",
        html="<p>Plain words.</p>",
        message_id=new_message_id("news.example.org"),
        now=NOW,
    )


def test_delivery_urls_choose_the_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """maildir: relative and absolute, smtp schemes with defaults; others are clear errors."""
    monkeypatch.chdir(tmp_path)
    relative = open_transport("maildir:outbox")
    assert isinstance(relative, MaildirTransport) and relative.path == Path("outbox")
    absolute = open_transport(f"maildir://{tmp_path / 'abs'}")
    assert isinstance(absolute, MaildirTransport) and absolute.path == tmp_path / "abs"
    smtp = open_transport("smtp+starttls://user%40x:p%3Ass@relay.example.org")
    assert isinstance(smtp, SMTPTransport)
    assert (smtp.target.port, smtp.target.security) == (587, "starttls")
    assert (smtp.target.username, smtp.target.password) == ("user@x", "p:ss")
    for bad in ("ftp://x", "maildir://host/path", "smtp://", "smtp://host:99999"):
        with pytest.raises(TransportError, match="delivery URL"):
            open_transport(bad)


def test_maildir_outbox_keeps_whole_messages(tmp_path: Path) -> None:
    """A message lands in new/ with its envelope recorded as an MDA would."""
    transport = open_transport(f"maildir://{tmp_path / 'outbox'}")
    sent = transport.send(
        _message("ann@example.org"), "briefing@news.example.org", "ann@example.org"
    )
    assert sent.reply.startswith("stored as ")
    [stored] = list(mailbox.Maildir(tmp_path / "outbox", create=False))
    assert stored["Return-Path"] == "<briefing@news.example.org>"
    assert stored["Delivered-To"] == "ann@example.org"
    assert stored["Subject"] == "Hello"


def test_smtp_sends_many_on_one_session_and_survives_a_refusal(smtp_server: SMTPServer) -> None:
    """A refused recipient raises a permanent, per-message error, RSETs, and the next one goes."""
    smtp_server.inbox.refuse.add("gone@example.org")
    transport = open_transport(smtp_server.url)
    try:
        first = transport.send(_message("ann@example.org"), "b@news.example.org", "ann@example.org")
        with pytest.raises(TransportError) as refused:
            transport.send(_message("gone@example.org"), "b@news.example.org", "gone@example.org")
        transport.send(_message("bo@example.org"), "b@news.example.org", "bo@example.org")
    finally:
        transport.close()
    assert first.reply.startswith("250 2.0.0 Ok: queued as TEST1")
    assert refused.value.code == 550 and refused.value.permanent and refused.value.per_message
    assert "User unknown" in str(refused.value)
    assert "RSET" in smtp_server.inbox.commands
    assert [m.recipients for m in smtp_server.inbox.messages] == [
        ["ann@example.org"],
        ["bo@example.org"],
    ]
    assert text_part(smtp_server.inbox.messages[0].message).splitlines() == ["Plain words."]


def test_internationalised_address_goes_over_smtputf8(smtp_server: SMTPServer) -> None:
    """An address with a non-ASCII local part is sent with SMTPUTF8 and arrives intact."""
    transport = open_transport(smtp_server.url)
    try:
        transport.send(
            _message("zoë@example.org", name="Zoë"), "b@news.example.org", "zoë@example.org"
        )
    finally:
        transport.close()
    [received] = smtp_server.inbox.messages
    assert received.recipients == ["zoë@example.org"]
    assert str(received.message["To"]) == "Zoë <zoë@example.org>"


def test_no_server_is_a_clear_transport_error() -> None:
    """Nothing listening: a TransportError that is not about one message, saying so in words."""
    port = free_port()
    transport = open_transport(f"smtp://127.0.0.1:{port}")
    with pytest.raises(TransportError, match="cannot connect") as failed:
        transport.send(_message("ann@example.org"), "b@news.example.org", "ann@example.org")
    assert not failed.value.per_message
    assert f"connection refused by 127.0.0.1:{port}" in str(failed.value)
    assert "Errno" not in str(failed.value)
    with pytest.raises(TransportError, match=f"connection refused by 127.0.0.1:{port}"):
        transport.probe()


def test_a_probe_opens_a_session_and_sends_nothing(smtp_server: SMTPServer) -> None:
    """The probe greets the relay and leaves: no MAIL FROM, no message, no session left open."""
    transport = open_transport(smtp_server.url)
    transport.probe()
    transport.close()
    assert smtp_server.inbox.mails == 0 and smtp_server.inbox.messages == []


def test_a_maildir_outbox_is_made_where_it_can_be_and_refused_where_not(tmp_path: Path) -> None:
    """Missing folders are made (a plain folder too becomes a Maildir); a path through a file
    says what could not be created; the probe writes and removes one file, nothing in new/."""
    (tmp_path / "plain").mkdir()  # made by hand, without tmp/ new/ cur/
    for path in (tmp_path / "plain", tmp_path / "deep" / "er" / "outbox"):
        transport = open_transport(f"maildir://{path}")
        transport.probe()
        assert sorted(p.name for p in path.iterdir()) == ["cur", "new", "tmp"]
        assert [list((path / sub).iterdir()) for sub in ("tmp", "new", "cur")] == [[], [], []]
        transport.send(_message("ann@example.org"), "b@x.org", "ann@example.org")
        assert len(list((path / "new").iterdir())) == 1
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(TransportError) as refused:
        open_transport(f"maildir://{tmp_path / 'a-file' / 'outbox'}")
    assert f"cannot use {tmp_path / 'a-file' / 'outbox'}/ as an outbox" in str(refused.value)
    assert "Not a directory" in str(refused.value)


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("Eve\r\nBcc: victim@example.org", "Hi\nBcc: victim@example.org"),
        ("Zoë «Ünïcode» Ñame", "Résumé: l’actualité\r\nX-Evil: 1"),
    ],
)
def test_no_value_can_add_a_header(name: str, subject: str, tmp_path: Path) -> None:
    """Newlines in a name or subject never become headers; non-ASCII is encoded."""
    transport = open_transport(f"maildir://{tmp_path / 'out'}")
    transport.send(
        _message("ann@example.org", name=name, subject=subject), "b@x.org", "ann@example.org"
    )
    raw = next(iter(Path(tmp_path / "out" / "new").iterdir())).read_bytes()
    headers = raw.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in headers and b"\nX-Evil:" not in headers
    [stored] = list(mailbox.Maildir(tmp_path / "out", create=False))
    assert "\n" not in str(stored["Subject"]) and "\n" not in str(stored["To"])


def test_lines_starting_with_a_dot_arrive_as_written(smtp_server: SMTPServer) -> None:
    """Dot-stuffing (done here, not by smtplib): a lone '.' line doesn't end the message."""
    body = ".\r\n..two dots\r\n.one dot\r\nlast line without an end"
    raw = f"Subject: dots\r\nTo: ann@example.org\r\n\r\n{body}".encode()
    transport = open_transport(smtp_server.url)
    try:
        transport.send(raw, "b@news.example.org", "ann@example.org")
        transport.send(raw + b"\r\n", "b@news.example.org", "bo@example.org")
    finally:
        transport.close()
    first, second = smtp_server.inbox.messages
    assert first.message.get_payload() == body + "\r\n"
    assert second.message.get_payload() == body + "\r\n"
    assert [first.recipients, second.recipients] == [["ann@example.org"], ["bo@example.org"]]
    assert first.sender == "b@news.example.org"
