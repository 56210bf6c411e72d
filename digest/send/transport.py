"""Where messages go, chosen by the ``delivery_url`` setting.

- ``maildir:outbox`` (relative) or ``maildir:///var/spool/digest`` (absolute): a
  Maildir folder, the default, so a demo or a new install sends nothing out.
- ``smtp://host:port``, ``smtp+starttls://user:pass@host:587``,
  ``smtps://user:pass@host:465``: a relay, one connection reused for many
  messages, reconnected once if the server dropped it.

Every transport has one method that sends, :meth:`Transport.send`; failures
raise :class:`TransportError`, which says whether trying later may help.
:meth:`Transport.probe` checks, sending nothing, that messages could go now
(an SMTP session opened and closed, or a test file written into the Maildir):
``digest send`` and the scheduled sends call it (:func:`check_delivery`) before
freezing an edition and before waiting on retries, so a relay that is down or an
outbox that can't be written stops them at once, with the reason.

The URL may carry a password: no message shows it except through
:func:`digest.settings.redact_url`. Mail to readers is opened with
:func:`open_delivery`, which also refuses SMTP while ``web.public_url`` is a
loopback address.
"""

from __future__ import annotations

import ipaddress
import mailbox
import os
import re
import smtplib
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from digest.errors import TransportError
from digest.send import smtp_codes
from digest.send.message import needs_smtputf8
from digest.settings import Settings, redact_url

DEFAULT_TIMEOUT = 30.0


class _Closing(Exception):
    """The server answered 421: reconnect and try the message again."""


@dataclass(frozen=True)
class Sent:
    """What the receiving side said when it took the message."""

    reply: str


class Transport(Protocol):
    description: str

    def send(self, raw: bytes, sender: str, recipient: str, stuffed: bytes | None = None) -> Sent:
        """Hand over one message (as bytes, CRLF line ends) for one recipient.

        ``stuffed``, when given, is ``dot_stuffed(raw)``, made by the caller more cheaply.
        """
        ...

    def probe(self) -> None:
        """Check that messages could be handed over now; ``TransportError`` saying why not."""
        ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message into a Maildir's ``new/`` (atomically, via ``tmp/``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the Maildir outbox {path}/"
        try:  # its folders, and any missing above it (mkdir -p), as an MDA would
            for folder in ("tmp", "new", "cur"):
                (path / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
            self._box = mailbox.Maildir(path, create=False)
        except OSError as exc:
            where = f"{exc.filename}" if exc.filename else str(path)
            raise TransportError(
                f"cannot use {path}/ as an outbox: cannot create {where}: {exc.strerror}"
            ) from exc

    def probe(self) -> None:
        """A file written into ``tmp/`` (and removed), and ``new/`` writable."""
        try:
            handle, name = tempfile.mkstemp(prefix=".probe.", dir=self.path / "tmp")
            try:
                os.write(handle, b"probe\n")
            finally:
                os.close(handle)
                os.unlink(name)
            if not os.access(self.path / "new", os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied", str(self.path / "new"))
        except OSError as exc:
            raise TransportError(
                f"cannot write to the outbox {self.path}/: {exc.strerror or exc}"
            ) from exc

    def send(self, raw: bytes, sender: str, recipient: str, stuffed: bytes | None = None) -> Sent:
        envelope = f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n".encode()
        try:
            key = self._box.add(envelope + raw.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise TransportError(f"cannot write to {self.path}: {exc.strerror}") from exc
        return Sent(f"stored as {key}")

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class SMTPTarget:
    host: str
    port: int
    security: str  # "none" | "starttls" | "tls"
    username: str | None = None
    password: str | None = None


class SMTPTransport:
    """One SMTP session, opened on first use and kept for the messages that follow."""

    def __init__(self, target: SMTPTarget, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.target = target
        self.timeout = timeout
        self.description = f"the SMTP server {target.host}:{target.port}"
        self._smtp: smtplib.SMTP | None = None
        self._body_sent = False

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        try:
            smtp: smtplib.SMTP
            if target.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    target.host,
                    target.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
            smtp.ehlo_or_helo_if_needed()
            if target.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if target.username:
                smtp.login(target.username, target.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"{self.description} refused the login: {exc.smtp_code} {_text(exc.smtp_error)}",
                code=exc.smtp_code,
                permanent=True,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(self._unreachable(exc)) from exc
        return smtp

    def _unreachable(self, exc: BaseException) -> str:
        """Why no session could be opened, in words (the address, never the password)."""
        where = f"{self.target.host}:{self.target.port}"
        if isinstance(exc, ConnectionRefusedError):
            why = f"connection refused by {where} (no SMTP server listens there)"
        elif isinstance(exc, TimeoutError):  # socket.timeout too
            why = f"no answer from {where} within {self.timeout:g} s"
        elif isinstance(exc, socket.gaierror):
            why = f"the host {self.target.host} is unknown ({exc.strerror})"
        elif isinstance(exc, ssl.SSLError):
            why = f"the TLS handshake with {where} failed: {exc.reason or exc}"
        elif isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError)):
            why = f"{where} closed the connection before the session began: {exc}"
        elif isinstance(exc, smtplib.SMTPException):
            why = f"{self.description} refused the session: {exc}"
        else:
            why = f"{where}: {getattr(exc, 'strerror', None) or exc}"
        return f"cannot connect: {why}"

    def probe(self) -> None:
        """One session opened (greeting, EHLO, STARTTLS, login as configured) and closed."""
        smtp = self._connect()
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send(self, raw: bytes, sender: str, recipient: str, stuffed: bytes | None = None) -> Sent:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                return self._transaction(self._smtp, raw, sender, recipient, stuffed)
            except _Closing as exc:  # 421: the server is closing; a new session may work
                self._drop()
                if attempt == 2:
                    raise TransportError(str(exc), code=smtp_codes.SERVICE_CLOSING) from exc
            except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                self._drop()
                if self._body_sent:
                    # The message went over but its answer was lost: it may have been
                    # accepted, so no immediate resend; the caller decides (a retry later).
                    raise TransportError(
                        f"{self.description} dropped the connection after the message was "
                        f"sent, before answering: {exc}"
                    ) from exc
                if attempt == 2:
                    raise TransportError(
                        f"{self.description} closed the connection: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    def _transaction(
        self, smtp: smtplib.SMTP, raw: bytes, sender: str, recipient: str, stuffed: bytes | None
    ) -> Sent:
        self._body_sent = False
        utf8 = needs_smtputf8(sender, recipient)
        options: list[str] = []
        if utf8:
            if not smtp.has_extn("smtputf8"):
                raise TransportError(
                    f"{self.description} does not accept internationalised addresses (SMTPUTF8)",
                    permanent=True,
                    per_message=True,
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        if options or not (_plain(sender) and _plain(recipient)):
            code, reply = smtp.mail(sender, options)
        else:  # what smtplib would write, without parsing the address (a third of its cost)
            smtp.putcmd("mail", f"FROM:<{sender}>")
            code, reply = smtp.getreply()
        if code != smtp_codes.OK:
            self._refused("sender", "the sender", code, reply, smtp)
        if options or not _plain(recipient):
            code, reply = smtp.rcpt(recipient)
        else:
            smtp.putcmd("rcpt", f"TO:<{recipient}>")
            code, reply = smtp.getreply()
        if code not in smtp_codes.RECIPIENT_ACCEPTED:
            self._refused("recipient", recipient, code, reply, smtp)
        self._body_sent = True  # from here on, a lost answer may mean it was accepted
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != smtp_codes.START_MAIL_INPUT:  # DATA refused (any answer but 354): no body went
            self._refused("message", "the message", code, reply, smtp)
        smtp.send(dot_stuffed(raw) if stuffed is None else stuffed)
        code, reply = smtp.getreply()
        if code != smtp_codes.OK:
            self._refused("message", "the message", code, reply, smtp)
        return Sent(f"{code} {_text(reply)}")

    def _refused(self, step: str, what: str, code: int, reply: bytes, smtp: smtplib.SMTP) -> None:
        if code == smtp_codes.SERVICE_CLOSING:
            raise _Closing(f"{self.description} is closing the session: {code} {_text(reply)}")
        try:
            smtp.rset()  # one refused recipient must not spoil the session
        except (smtplib.SMTPException, OSError):
            self._drop()
        raise TransportError(
            f"{self.description} refused {what}: {code} {_text(reply)}",
            code=code,
            permanent=smtp_codes.is_permanent(code),
            per_message=True,
            refused=step,
            reply=_text(reply),
        )

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._drop()


#: An address smtplib's ``quoteaddr`` would write back as it is, inside ``<>``: printable
#: ASCII, one ``@``, nothing a mail address parser reads as syntax (quotes, comments,
#: brackets, separators, spaces). Anything else goes through smtplib's own methods.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _plain(address: str) -> bool:
    return _PLAIN_ADDRESS.fullmatch(address) is not None


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload: lines starting with ``.`` doubled, CRLF at the end, then ``.``.

    What ``smtplib.SMTP.data`` sends for bytes, with ``bytes.replace`` (C speed) in place
    of its per-line regular expression, which cost as much as the rest of the send.
    """
    stuffed = (b"." + raw if raw.startswith(b".") else raw).replace(b"\n.", b"\n..")
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


_SMTP_SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
_ENCODE = "percent-encode / ? # @ : in the user name or password"


def open_transport(url: str, timeout: float = DEFAULT_TIMEOUT) -> Transport:
    """The transport ``url`` names; a clear ``TransportError`` if it names none.

    Errors show the URL through :func:`redact_url` only: it may carry a password.
    """
    shown = repr(redact_url(url))
    try:
        parts = urlsplit(url)
        port = parts.port if parts.scheme in _SMTP_SCHEMES else None
    except ValueError:  # its message would quote part of the URL, perhaps of the password
        raise TransportError(
            f"delivery URL {shown} is malformed: the port must be a number from 1 to 65535 "
            f"({_ENCODE})"
        ) from None
    if parts.scheme == "maildir":
        path = unquote(parts.path) if not parts.netloc else None
        if not path:
            raise TransportError(
                f"delivery URL {shown}: write maildir:relative/path or maildir:///absolute/path"
            )
        return MaildirTransport(Path(path))
    if parts.scheme in _SMTP_SCHEMES:
        security, default_port = _SMTP_SCHEMES[parts.scheme]
        if not parts.hostname or "@" in parts.path + parts.query + parts.fragment:
            # "@" after the host: a password with an unencoded character, split wrongly
            raise TransportError(f"delivery URL {shown} names no usable host ({_ENCODE})")
        return SMTPTransport(
            SMTPTarget(
                parts.hostname,
                port or default_port,
                security,
                unquote(parts.username) if parts.username else None,
                unquote(parts.password) if parts.password else None,
            ),
            timeout,
        )
    raise TransportError(
        f"delivery URL {shown} is not supported: use maildir:outbox, maildir:///path, "
        "smtp://host:port, smtp+starttls://… or smtps://…"
    )


def open_delivery(settings: Settings) -> Transport:
    """The transport for mail to readers (editions, tests, drafts, confirmations).

    Every such message carries confirm or unsubscribe links under ``web.public_url``;
    while that is a loopback address they lead nowhere, so real mail (SMTP) is
    refused. A Maildir outbox (the default, for the demo and trials) is not.
    """
    transport = open_transport(
        settings.delivery_url.get_secret_value(), settings.delivery.timeout_seconds
    )
    public_url = settings.web.public_url
    if isinstance(transport, SMTPTransport) and is_loopback_url(public_url):
        transport.close()
        raise TransportError(
            f"not sending over SMTP: web.public_url is {public_url}, a loopback address, so "
            "the confirm and unsubscribe links in every email would lead nowhere. Set "
            "web.public_url in digest.toml (or DIGEST_WEB__PUBLIC_URL) to the address where "
            "readers reach `digest serve`, such as https://news.example.org/list.",
            permanent=True,
        )
    return transport


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine only: localhost, 127.0.0.0/8, ::1 (or 0.0.0.0)."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):  # urlsplit lowercases it
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
