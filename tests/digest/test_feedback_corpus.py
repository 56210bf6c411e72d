"""The corpus of real-world forms (tests/data/feedback/): each message filed as expected."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.database import open_database
from digest.feedback.models import Feedback
from digest.feedback.sources import FileSource
from digest.feedback.store import Filer, Incoming
from digest.ledger import Delivery, FrozenEdition
from subscribers.db import Database
from subscribers.models import Subscriber
from tests.helpers import FEEDBACK_DATA as DATA
from tests.helpers import READERS, scenario_settings, send_scenario

CORPUS: list[dict[str, Any]] = tomllib.loads((DATA / "corpus.toml").read_text("utf-8"))["message"]


def _make_big() -> Any:
    spec = importlib.util.spec_from_file_location("make_big", DATA / "make_big.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filed(db: Database) -> list[dict[str, Any]]:
    """Every filed row with its edition date, subscriber address and their states."""
    with db.transaction() as session:
        rows = session.execute(
            select(Feedback, FrozenEdition.date, Subscriber.email, Subscriber.status, Delivery)
            .outerjoin(FrozenEdition, FrozenEdition.id == Feedback.edition_id)
            .outerjoin(Subscriber, Subscriber.id == Feedback.subscriber_id)
            .outerjoin(Delivery, Delivery.id == Feedback.delivery_id)
            .order_by(Feedback.id)
        ).all()
        return [
            {
                "row": feedback,
                "edition": day.isoformat() if day else None,
                "subscriber": email,
                "subscriber_status": status.value if status else None,
                "delivery_status": delivery.status.value if delivery else None,
            }
            for feedback, day, email, status, delivery in rows
        ]


def check(found: dict[str, Any], expected: dict[str, Any]) -> None:
    row: Feedback = found["row"]
    name = expected["file"]
    assert row.kind == expected["kind"], (name, row.kind, row.problem, row.linked_by)
    assert found["edition"] == expected.get("edition"), (name, row.linked_by)
    assert found["subscriber"] == expected.get("subscriber"), (name, row.linked_by)
    assert row.subject == expected["subject"], name
    assert row.from_email == expected["from"], name
    text = row.text or ""
    for phrase in expected.get("text_contains", []):
        assert phrase in text, (name, phrase, text)
    for phrase in expected.get("text_excludes", []):
        assert phrase not in text, (name, phrase, text)
    if "permanent" in expected:
        assert row.permanent is expected["permanent"], name
    if "subscriber_status_after" in expected:
        assert found["subscriber_status"] == expected["subscriber_status_after"], name
    if "delivery_status_after" in expected:
        assert found["delivery_status"] == expected["delivery_status_after"], name


@pytest.mark.parametrize("expected", CORPUS, ids=[m["file"] for m in CORPUS])
def test_each_message_is_classified_and_linked(
    expected: dict[str, Any], db: Database, db_url: str, tmp_path: Path
) -> None:
    """Kind, edition, subscriber, decoded subject and sender, stripped text, and effects."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    report = Filer(db, settings).file(FileSource(DATA / expected["file"]))
    assert report.stored == 1 and not report.not_stored
    [found] = filed(db)
    check(found, expected)
    assert found["row"].raw == (DATA / expected["file"]).read_bytes()  # kept byte for byte


def test_the_whole_corpus_and_the_mbox_in_one_import(tmp_path: Path) -> None:
    """Filed together: duplicates (the re-delivered copy, the mbox's copy) are stored once."""
    settings = scenario_settings(tmp_path, f"sqlite:///{tmp_path / 'all.db'}")
    with open_database(settings.database_url) as all_db:
        send_scenario(all_db, settings, tmp_path)
        filer = Filer(all_db, settings)
        folder = filer.file(FileSource(DATA))
        assert folder.seen == len(CORPUS) and not folder.not_stored
        assert (folder.stored, folder.duplicates) == (len(CORPUS) - 1, 1)
        mbox = filer.file(FileSource(DATA / "replies.mbox"))
        assert (mbox.seen, mbox.stored, mbox.duplicates) == (3, 2, 1)
        rows = filed(all_db)
        # received_at is when the top Received: header says it arrived, not import time,
        # and not a Date: header from the future
        assert all(r["row"].received_at.strftime("%Y-%m") == "2017-11" for r in rows)
        [future] = [r["row"] for r in rows if r["row"].origin.endswith("crlf-future-date.eml")]
        assert future.sent_at is not None and future.received_at < future.sent_at
        by_from = {r["row"].from_email: r for r in rows[-2:]}
        assert {r["subscriber"] for r in by_from.values()} == {READERS[5], READERS[6]}
        assert all(r["row"].kind == "reply" and r["edition"] for r in by_from.values())


def test_a_reply_with_a_20_mb_attachment(db: Database, db_url: str, tmp_path: Path) -> None:
    """Stored whole, linked, and its text is the reader's line, not the attachment."""
    make_big = _make_big()
    raw: bytes = make_big.big_attachment_message()
    assert len(raw) > 20 * 1024 * 1024
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    report = Filer(db, settings).file([Incoming(raw, "big-attachment.eml")])
    assert report.stored == 1
    [found] = filed(db)
    check(found, make_big.EXPECTED)
    assert found["row"].size == len(raw) and found["row"].raw == raw
