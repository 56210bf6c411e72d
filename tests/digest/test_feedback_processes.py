"""`digest run` polling the mailbox, and `digest feedback listen`, as real processes."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.dovecot import ImapServer
from tests.helpers import append_all, reader_reply, wait_for
from tests.mailserver import free_port

DIGEST = [sys.executable, "-c", "from digest.cli.app import main; main()"]


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return {
        **env,
        "DIGEST_DATABASE_URL": f"sqlite:///{folder / 'digest.db'}",
        "DIGEST_SECRET_KEY": "feedback-corpus-secret-0001",
        **extra,
    }


def _rows(folder: Path) -> list[tuple[str, str]]:
    engine = create_engine(f"sqlite:///{folder / 'digest.db'}")
    try:
        with engine.connect() as connection:
            return [
                (str(row[0]), str(row[1]))
                for row in connection.execute(text("SELECT message_id, kind FROM feedback"))
            ]
    except Exception:  # not created yet: the process is still migrating
        return []
    finally:
        engine.dispose()


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def test_digest_run_fetches_the_mailbox_when_it_starts(imap: ImapServer, tmp_path: Path) -> None:
    """With feedback.imap_url set, the service files the mailbox at once and then every poll."""
    append_all(imap, [reader_reply(1, 1)])
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [*DIGEST, "run", "--no-web"],
        cwd=tmp_path,
        env=_env(
            tmp_path, DIGEST_FEEDBACK__IMAP_URL=imap.url(), DIGEST_FEEDBACK__POLL_MINUTES="0.05"
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: len(_rows(tmp_path)) == 1, "the first fetch")
        append_all(imap, [reader_reply(2, 2)])
        wait_for(lambda: len(_rows(tmp_path)) == 2, "the next poll (every 3 s here)")
    finally:
        assert _stop(process) == 0, (tmp_path / "run.log").read_text()
    # Nothing was sent from this database, so the replies answer no delivery of ours.
    assert sorted(_rows(tmp_path)) == [
        ("<reply-1@mail.example.com>", "other"),
        ("<reply-2@mail.example.com>", "other"),
    ]


def test_digest_feedback_listen_receives_mail_from_smtplib(tmp_path: Path) -> None:
    """The command listens on the port given, files what arrives, and stops on SIGTERM."""
    port = free_port()
    log = (tmp_path / "listen.log").open("wb")
    process = subprocess.Popen(
        [*DIGEST, "feedback", "listen", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: b"accepting mail" in (tmp_path / "listen.log").read_bytes(), "start")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "reader@example.org",
                ["desk@news.example.org"],
                b"From: reader@example.org\r\nTo: desk@news.example.org\r\n"
                b"Subject: Story suggestion\r\nMessage-ID: <tip@example.org>\r\n\r\n"
                b"The lighthouse lease runs out in March.\r\n",
            )
    finally:
        assert _stop(process) == 0, (tmp_path / "listen.log").read_text()
    assert _rows(tmp_path) == [("<tip@example.org>", "suggestion")]
