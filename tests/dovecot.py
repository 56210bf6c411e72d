"""A real IMAP server (Dovecot) for tests, run from a config file in a temporary folder.

The session fixture ``imap_server`` writes a minimal ``dovecot.conf`` (its own base_dir,
state_dir and log, plain IMAP on 127.0.0.1 at a free port, no TLS, one static user) and
starts ``dovecot -F -c`` with it; the system's /etc/dovecot and its service are never used.
The function fixture ``imap`` empties the mailbox first, so each test starts with an empty
INBOX and no other folders. Only imaplib is used here, so no test extra is needed.

Dovecot never lets mail processes run as root ("userdb returned 0 as uid", "Mail access not
allowed for root"), and its login processes refuse root too. Run as root, the server keeps
Dovecot's own dovenull/dovecot users for its helpers and reads and writes the mail as
``nobody``, in a home folder made for it in the system's temporary folder (the one pytest
makes is private to root). Run as another user, everything runs as that user.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers import need_service

HOST = "127.0.0.1"
USER = "digest"
PASSWORD = "imap-test-password"
STARTUP_TIMEOUT = 15.0
ROOT_MAIL_USER = "nobody"  # Dovecot refuses uid 0 for mail access


def _binary(name: str, *fallbacks: str) -> str | None:
    """The path of a Dovecot program: on PATH, or at its Debian location."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def dovecot_binary() -> str | None:
    """The ``dovecot`` master program, or None when Dovecot is not installed."""
    return _binary("dovecot", "/usr/sbin/dovecot")


def doveadm_binary() -> str | None:
    """The ``doveadm`` admin program that comes with dovecot-core, or None."""
    return _binary("doveadm", "/usr/bin/doveadm")


def dovecot_available() -> bool:
    """Whether the ``dovecot`` program exists (at /usr/sbin/dovecot or on PATH)."""
    return dovecot_binary() is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _mailbox(name: str) -> str:
    """A mailbox name as an IMAP quoted string (ASCII names only)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_LIST_LINE = re.compile(r'^\((?P<flags>[^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$')
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


def _list_entries(data: list[Any]) -> list[tuple[set[str], str]]:
    """The flags and names in the lines of a LIST or LSUB answer, names unquoted."""
    entries: list[tuple[set[str], str]] = []
    for item in data:
        if item is None:  # LSUB with no subscriptions
            continue
        line = (item[0] if isinstance(item, tuple) else item).decode()
        match = _LIST_LINE.match(line)
        if match is None:
            raise AssertionError(f"unexpected LIST line: {item!r}")
        name = match["name"]
        if isinstance(item, tuple):  # the name came as a literal
            name = item[1].decode()
        elif name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        entries.append((set(match["flags"].split()), name))
    return entries


def _ok(result: tuple[str, list[Any]], what: str) -> list[Any]:
    """The data of an IMAP command's answer, or an error when it was not OK."""
    typ, data = result
    if typ != "OK":
        raise AssertionError(f"IMAP {what} failed: {typ} {data!r}")
    return data


@dataclass
class ImapServer:
    """A running Dovecot with one user whose mail is in ``maildir`` (INBOX is its root)."""

    host: str
    port: int
    user: str
    password: str
    maildir: Path
    config: Path
    log: Path

    def url(self, folder: str = "INBOX", scheme: str = "imap") -> str:
        """The server as imap://user:password@127.0.0.1:PORT/FOLDER."""
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{scheme}://{credentials}@{self.host}:{self.port}/{quote(folder, safe='/')}"

    @contextmanager
    def client(self, timeout: float = 10) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib connection, logged out afterwards."""
        connection = imaplib.IMAP4(self.host, self.port, timeout=timeout)
        try:
            connection.login(self.user, self.password)
            yield connection
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                connection.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Store a message in ``folder`` by IMAP APPEND, creating the folder if needed."""
        with self.client() as connection:
            if folder.upper() != "INBOX":
                connection.create(_mailbox(folder))  # NO when it exists already: fine
            _ok(connection.append(_mailbox(folder), None, None, raw), f"APPEND to {folder}")

    def folders(self) -> list[str]:
        """The names of all folders, INBOX included."""
        with self.client() as connection:
            data = _ok(connection.list(), "LIST")
        return [name for flags, name in _list_entries(data) if "\\NonExistent" not in flags]

    def reset(self) -> None:
        """Delete every message and every folder but INBOX, by IMAP."""
        with self.client() as connection:
            entries = _list_entries(_ok(connection.list(), "LIST"))
            others = [name for _, name in entries if name.upper() != "INBOX"]
            for name in sorted(others, key=len, reverse=True):  # children before parents
                connection.unsubscribe(_mailbox(name))
                connection.delete(_mailbox(name))  # NO for a mere parent of a deleted child
            _, subscribed = connection.lsub()
            for _, name in _list_entries(subscribed):
                if name.upper() != "INBOX":
                    connection.unsubscribe(_mailbox(name))
            count = int(_ok(connection.select("INBOX"), "SELECT INBOX")[0])
            if count:
                _ok(connection.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
                _ok(connection.expunge(), "EXPUNGE")
            left = _list_entries(_ok(connection.list(), "LIST"))
        if [name for _, name in left] != ["INBOX"]:
            raise AssertionError(f"reset left folders behind: {left}")

    def uidvalidity(self, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY, as STATUS reports it."""
        with self.client() as connection:
            data = _ok(connection.status(_mailbox(folder), "(UIDVALIDITY)"), "STATUS")
        match = re.search(rb"UIDVALIDITY (\d+)", data[0])
        if match is None:
            raise AssertionError(f"no UIDVALIDITY in {data!r}")
        return int(match[1])

    def change_uidvalidity(self, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY (old + 1), keeping its messages; return it."""
        doveadm = doveadm_binary()
        if doveadm is None:
            raise RuntimeError("doveadm is missing (it comes with dovecot-core)")
        new = self.uidvalidity(folder) % 0xFFFFFFFF + 1
        command = [doveadm, "-c", str(self.config), "mailbox", "update", "-u", self.user]
        done = subprocess.run(
            [*command, "--uid-validity", str(new), folder],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm mailbox update failed: {done.stderr or done.stdout}")
        if self.uidvalidity(folder) != new:
            raise AssertionError(f"UIDVALIDITY of {folder} did not change to {new}")
        return new

    def uids(self, folder: str = "INBOX") -> list[int]:
        """The UIDs of the folder's messages, in order."""
        with self.client() as connection:
            _ok(connection.select(_mailbox(folder), readonly=True), f"EXAMINE {folder}")
            data = _ok(connection.uid("SEARCH", "ALL"), "UID SEARCH")
        return [int(uid) for uid in (data[0] or b"").split()]

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Each message's flags and keywords by UID (without the session flag \\Recent)."""
        with self.client() as connection:
            count = _ok(connection.select(_mailbox(folder), readonly=True), f"EXAMINE {folder}")
            if not int(count[0]):
                return {}
            data = _ok(connection.uid("FETCH", "1:*", "(FLAGS)"), "UID FETCH")
        result: dict[int, set[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, flags = _UID.search(line), _FLAGS.search(line)
            if uid and flags:
                result[int(uid[1])] = set(flags[1].decode().split()) - {"\\Recent"}
        return result


def _config(root: Path, port: int, home: Path, mail_uid: int, mail_gid: int) -> str:
    """The text of a dovecot.conf for a private server whose files are all under ``root``."""
    lines = [
        f"base_dir = {root / 'run'}",
        f"state_dir = {root / 'state'}",
        f"log_path = {root / 'dovecot.log'}",
        "protocols = imap",
        f"listen = {HOST}",
        "ssl = no",
        "disable_plaintext_auth = no",
        "auth_mechanisms = plain login",
        "mail_location = maildir:~/Maildir",
        "first_valid_uid = 1",
        "first_valid_gid = 0",
    ]
    if os.getuid() != 0:
        # no root: Dovecot's helper users and its chroots are out of reach, so run as us
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        lines += [
            f"default_login_user = {user}",
            f"default_internal_user = {user}",
            f"default_internal_group = {group}",
            "service anvil {\n  chroot =\n}",
        ]
    chroot = "" if os.getuid() == 0 else "  chroot =\n"
    lines += [
        f"passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}",
        f"userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={home}\n}}",
        "service imap-login {\n"
        f"{chroot}"
        f"  inet_listener imap {{\n    address = {HOST}\n    port = {port}\n  }}\n"
        "  inet_listener imaps {\n    port = 0\n  }\n"
        "}",
    ]
    return "\n".join(lines) + "\n"


def _logs(root: Path) -> str:
    """What Dovecot wrote to its log and to its standard output, for an error message."""
    parts = []
    for name in ("dovecot.log", "dovecot.out"):
        path = root / name
        text = path.read_text(errors="replace") if path.exists() else "(none)"
        parts.append(f"--- {path}\n{text}")
    return "\n".join(parts)


def _wait_ready(server: ImapServer, process: subprocess.Popen[bytes], root: Path) -> None:
    """Wait until the server accepts a login, or fail with Dovecot's log."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    problem = "timed out"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            problem = f"dovecot exited with status {process.returncode}"
            break
        try:
            with server.client(timeout=2):
                return
        except (OSError, imaplib.IMAP4.error) as error:
            problem = f"{type(error).__name__}: {error}"
            time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not start on {HOST}:{server.port} ({problem})\n{_logs(root)}")


def _stop(process: subprocess.Popen[bytes], port: int) -> None:
    """Stop the master (it stops its children) and wait until the port is free."""
    if process.poll() is not None:
        return  # it stopped on its own, maybe without ever listening
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) != 0:
                return
        time.sleep(0.05)


@pytest.fixture(scope="session")
def imap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    """A private Dovecot IMAP server for the whole session, stopped at its end."""
    need_service(dovecot_available(), "Dovecot: apt-get install dovecot-imapd")
    dovecot = dovecot_binary()
    assert dovecot is not None
    root = tmp_path_factory.mktemp("dovecot")
    (root / "run").mkdir()
    (root / "state").mkdir()
    home_made: Path | None = None
    if os.getuid() == 0:
        # the mail user can't be root, and pytest's temporary folders are private to root
        mail_user = pwd.getpwnam(ROOT_MAIL_USER)
        mail_uid, mail_gid = mail_user.pw_uid, mail_user.pw_gid
        home = home_made = Path(tempfile.mkdtemp(prefix="dovecot-mail-"))
        os.chown(home, mail_uid, mail_gid)
    else:
        mail_uid, mail_gid = os.getuid(), os.getgid()
        home = root / "home"
        home.mkdir()
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, home, mail_uid, mail_gid))
    server = ImapServer(HOST, port, USER, PASSWORD, home / "Maildir", config, root / "dovecot.log")
    with (root / "dovecot.out").open("wb") as output:
        process = subprocess.Popen(
            [dovecot, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(server, process, root)
        yield server
    finally:
        _stop(process, port)
        if home_made is not None:
            shutil.rmtree(home_made, ignore_errors=True)


@pytest.fixture
def imap(imap_server: ImapServer) -> ImapServer:
    """The Dovecot server with an empty INBOX and no other folders."""
    imap_server.reset()
    return imap_server
