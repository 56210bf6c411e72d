"""The demo's sending half: example subscribers, the example edition sent to them,
and one reader's reply filed against it.

It works in its own folder (a SQLite database and a Maildir outbox there), so it
never touches the configured database or sends real mail; each run starts afresh.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from digest.database import open_database
from digest.edition.files import EXAMPLE_EDITION
from digest.feedback.query import Filter, list_feedback
from digest.feedback.store import Filer, Incoming
from digest.ledger import Delivery, FrozenEdition
from digest.send.message import build_message, mailbox, new_message_id, to_bytes
from digest.send.publish import freeze_file, plan_send
from digest.settings import Settings
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.db import Database
from subscribers.models import ConsentMethod, Subscriber

EXAMPLE_READERS = (
    ("ada.reader@example.org", "Ada Reader"),
    ("ben.okafor@example.org", "Ben Okafor"),
    ("chloé.martin@example.org", "Chloé Martin"),
    ("dev.patel@example.org", "Dev Patel"),
    ("eun-ji.kim@example.org", "Eun-ji Kim"),
)


@dataclass(frozen=True)
class DemoResult:
    sent: int
    outbox: Path
    database_url: str
    reply: dict[str, Any]  # the filed reply, as `digest feedback list --format json` shows it


def send_demo(settings: Settings, folder: Path) -> DemoResult:
    """Send the example edition to the example readers, then file the first one's reply."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "demo.db"
    outbox = folder / "outbox"
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(outbox, ignore_errors=True)
    demo = settings.model_copy(
        update={
            "database_url": f"sqlite:///{database}",
            "delivery_url": SecretStr(f"maildir:{outbox}"),
            "secret_key_file": folder / "demo.secret",
        }
    )
    db = open_database(demo.database_url)
    try:
        with db.transaction() as session:
            for email, name in EXAMPLE_READERS:
                audience.join(
                    session,
                    parse_address(email),
                    datetime.now(UTC),
                    audience.ConsentEvidence(ConsentMethod.editor, form_version="digest demo"),
                    name=name,
                    confirmed=True,
                )
        frozen = freeze_file(db, demo, EXAMPLE_EDITION)
        result = plan_send(db, demo, frozen.edition).sender.run()
        Filer(db, demo).file([Incoming(_reply(db, demo), "digest demo")])
        with db.transaction() as session:
            [reply] = list_feedback(session, Filter(limit=1))
    finally:
        db.close()
    return DemoResult(result.sent, outbox, demo.database_url, reply)


def _reply(db: Database, settings: Settings) -> bytes:
    """What the first example reader writes back: a top-posted answer, quote below."""
    with db.transaction() as session:
        message_id, email, name, subject = session.execute(
            select(Delivery.message_id, Subscriber.email, Subscriber.name, FrozenEdition.subject)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(FrozenEdition, FrozenEdition.id == Delivery.edition_id)
            .order_by(Delivery.id)
            .limit(1)
        ).one()
    assert message_id is not None  # it was sent
    publication = settings.publication
    reply = build_message(
        sender=mailbox(name, email),
        to=mailbox(publication.name, publication.contact_email),
        subject=f"Re: {subject}",
        text=(
            "Thank you for the harbour piece. My brother works the night shifts and the\n"
            "rest-time rule is all anyone there talks about.\n\n"
            f"{name}\n\n"
            f"On Thursday the briefing wrote:\n> {subject}\n> We review the key developments\n"
        ),
        html=None,
        message_id=new_message_id("example.org"),
        now=datetime.now(UTC),
        headers={"In-Reply-To": message_id, "References": message_id},
    )
    return to_bytes(reply, email, publication.contact_email)
