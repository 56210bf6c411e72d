"""The demo's sending half: example subscribers, and the example edition sent to them.

It works in its own folder (a SQLite database and a Maildir outbox there), so it
never touches the configured database or sends real mail; each run starts afresh.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from digest.editions import EXAMPLE_EDITION
from digest.publish import freeze_file, plan_send
from digest.settings import Settings
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.db import open_database
from subscribers.models import ConsentMethod

EXAMPLE_READERS = (
    ("ada.reader@example.org", "Ada Reader"),
    ("ben.okafor@example.org", "Ben Okafor"),
    ("chloé.martin@example.org", "Chloé Martin"),
    ("dev.patel@example.org", "Dev Patel"),
    ("eun-ji.kim@example.org", "Eun-ji Kim"),
)


def send_demo(settings: Settings, folder: Path) -> tuple[int, Path]:
    """Send the example edition to the example readers; (messages sent, outbox folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "demo.db"
    outbox = folder / "outbox"
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(outbox, ignore_errors=True)
    demo = settings.model_copy(
        update={
            "database_url": f"sqlite:///{database}",
            "delivery_url": f"maildir:{outbox}",
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
    finally:
        db.close()
    return result.sent, outbox
