from __future__ import annotations

import csv
import io
import json
import mailbox
from pathlib import Path

import pytest

from subscribers.db import Database
from tests.helpers import run
from tests.mailserver import SMTPServer, free_port


@pytest.fixture
def here(clean_env: Path, db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI pointed at the test database, which ``db`` empties afterwards."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    return clean_env


def test_subscriber_commands_end_to_end(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """add, import, list, show, unsubscribe, erase and export work together with clear errors."""
    assert run(["subscribers", "add", "Ann@Example.org", "--name", "Ann", "--confirmed"], capsys)[
        1
    ] == ("Ann@Example.org: added (active)\n")
    code, _, err = run(["subscribers", "add", "not-an-address"], capsys)
    notice, error = err.splitlines()[:2]  # which settings it uses, then the error
    assert code == 1 and notice.startswith("no digest.toml in ")
    assert error.startswith("error: 'not-an-address' is not a valid email address")
    (here / "list.csv").write_text("email;name\nbo@example.org;Bo\nbroken\n=x@example.org;=1+1\n")
    code, out, _ = run(
        ["subscribers", "import", "list.csv", "--confirmed", "--rejects", "rejects.csv"], capsys
    )
    assert code == 0
    assert "3 rows: 2 added, 0 updated, 0 unchanged, 1 rejected" in out
    assert "row 3: 1 cell where the header has 2" in out
    assert "broken" in (here / "rejects.csv").read_text()
    code, out, _ = run(["subscribers", "list", "--format", "json"], capsys)
    assert [row["email"] for row in json.loads(out)] == [
        "Ann@Example.org",
        "bo@example.org",
        "=x@example.org",
    ]
    code, out, _ = run(["subscribers", "unsubscribe", "ANN@example.org"], capsys)
    assert out == "ANN@example.org: unsubscribed\n"
    code, _, err = run(["subscribers", "add", "ann@example.org", "--confirmed"], capsys)
    assert code == 1 and "is unsubscribed" in err and "only the person can re-subscribe" in err
    code, out, _ = run(["subscribers", "show", "ann@example.org"], capsys)
    assert json.loads(out)["status_history"][-1]["to"] == "unsubscribed"
    code, out, _ = run(["subscribers", "list", "--status", "active", "--format", "csv"], capsys)
    assert [r["email"] for r in csv.DictReader(io.StringIO(out))] == [
        "bo@example.org",
        "=x@example.org",
    ]
    assert run(["subscribers", "erase", "bo@example.org", "--yes"], capsys)[0] == 0
    code, _, err = run(["subscribers", "show", "bo@example.org"], capsys)
    assert code == 1 and "no subscriber with the address" in err
    code, _, err = run(["subscribers", "import", "missing.csv"], capsys)
    assert code == 1 and "missing.csv does not exist" in err
    code, _, err = run(["subscribers", "export", "out.csv"], capsys)
    assert code == 0 and "exported 2 subscribers to out.csv" in err
    assert "'=x@example.org" in (here / "out.csv").read_text()


def test_bad_database_url_is_a_clear_error(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unusable database URL is reported, not a traceback."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", "mysql://nobody@nowhere/db")
    code, _, err = run(["subscribers", "list"], capsys)
    assert code == 1 and "unsupported database 'mysql'" in err
    monkeypatch.setenv("DIGEST_DATABASE_URL", "not a url")
    code, _, err = run(["subscribers", "list"], capsys)
    assert code == 1 and "is not valid" in err


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@host:notaport/db",
        "postgresql://u:secret@host:[::1/db",
        "postgresql//u:secret@host/db",
        "postgresql+nodriver://u:secret@host/db",
    ],
)
def test_a_malformed_database_url_is_an_error_without_its_password(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A malformed URL (a port that is no number …): exit 1, a message, no password or traceback."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", url)
    code, out, err = run(["subscribers", "list"], capsys)
    assert code == 1 and err.startswith("error: ")
    assert "u:***@host" in err and "secret" not in out + err and "Traceback" not in out + err


def test_import_stops_at_an_over_long_row_with_a_clear_error(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quoted cell hiding a row: exit 1, the row and limit named, no traceback, none smuggled."""
    (here / "list.csv").write_text(
        "email,name\nok@example.org,Ok\n"
        'a@example.org,"' + "x" * 140_000 + '\nsmuggled@example.com,Smuggled\n"\n'
    )
    code, out, err = run(["subscribers", "import", "list.csv", "--confirmed"], capsys)
    assert code == 1 and "Traceback" not in out + err
    message = " ".join(err.split())  # as one line, however the terminal wrapped it
    assert "error: list.csv: row 3 (line 3) is longer than 65,536 characters" in message
    assert "the rows before it were (1 added," in message
    code, out, _ = run(["subscribers", "list", "--format", "json"], capsys)
    assert [row["email"] for row in json.loads(out)] == ["ok@example.org"]


def _outbox_messages(folder: Path) -> list[mailbox.MaildirMessage]:
    return list(mailbox.Maildir(folder, create=False)) if folder.exists() else []


def test_add_and_import_send_confirmation_emails(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pending subscribers get one confirmation each in the default outbox; active ones none."""
    code, out, _ = run(["subscribers", "add", "ann@example.org"], capsys)
    assert code == 0 and "confirmation email sent to ann@example.org via the Maildir outbox" in out
    code, out, _ = run(["subscribers", "add", "ann@example.org"], capsys)
    assert "not sent again" in out
    assert (here / "digest.secret").stat().st_mode & 0o777 == 0o600
    (here / "list.csv").write_text("email,name\nbo@example.org,Bo\ncy@example.org,Cy\n")
    code, out, _ = run(["subscribers", "import", "list.csv"], capsys)
    assert code == 0 and "2 confirmation emails sent via the Maildir outbox" in out
    (here / "more.csv").write_text("email\ndee@example.org\n")
    assert run(["subscribers", "import", "more.csv", "--confirmed"], capsys)[0] == 0
    sent = _outbox_messages(here / "outbox")
    assert sorted(m["Delivered-To"] for m in sent) == [
        "ann@example.org",
        "bo@example.org",
        "cy@example.org",
    ]
    assert {str(m["To"]) for m in sent} >= {"Bo <bo@example.org>", "Cy <cy@example.org>"}
    code, out, _ = run(["subscribers", "confirmations"], capsys)
    assert "no pending subscriber is waiting" in out


def test_confirmations_resume_after_the_mail_server_was_down(
    here: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: SMTPServer,
) -> None:
    """No server: a clear error and nothing marked sent; once it is up, all go out once."""
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "https://list.news.example.org")  # not loopback
    (here / "list.csv").write_text("email\na@example.org\nb@example.org\n")
    code, out, err = run(["subscribers", "import", "list.csv"], capsys)
    assert code == 1 and "2 rows: 2 added" in out
    assert "cannot connect" in err and "digest subscribers confirmations" in err
    monkeypatch.setenv("DIGEST_DELIVERY_URL", smtp_server.url)
    smtp_server.inbox.refuse.add("b@example.org")
    code, out, _ = run(["subscribers", "confirmations"], capsys)
    assert code == 0 and "1 confirmation email sent" in out and "1 refused" in out
    assert "b@example.org: the SMTP server" in out and "550" in out
    assert [m.recipients for m in smtp_server.inbox.messages] == [["a@example.org"]]
    smtp_server.inbox.refuse.clear()
    code, out, _ = run(["subscribers", "confirmations"], capsys)
    assert "1 confirmation email sent" in out  # only the refused one is retried
    assert [m.recipients for m in smtp_server.inbox.messages][-1] == ["b@example.org"]
