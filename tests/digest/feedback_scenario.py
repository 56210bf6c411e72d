"""The sent edition the feedback corpus answers (see tests/data/feedback/corpus.toml).

Ten subscribers get the example edition of 2017-11-02 through the maildir
outbox, with a fixed secret and a fixed edition salt, so the Message-IDs and
VERP tokens written into the corpus files are the ones in the ledger.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import update

from digest.edition.files import EXAMPLE_EDITION
from digest.ledger import FrozenEdition
from digest.send.publish import freeze_source, plan_send
from digest.settings import Settings
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.tokens import Signer
from tests.databases import Clock

DATA = Path(__file__).resolve().parent.parent / "data" / "feedback"
SECRET = "feedback-corpus-secret-0001"
SALT = "c0ffee0123456789"
READERS = [
    "ana.lima@gmail.com",
    "ben.okafor@outlook.com",
    "chloe.martin@icloud.com",
    "dieter.mueller@example.de",
    "emma.nguyen@example.com",
    "farid.haddad@example.net",
    "grace.ito@example.org",
    "hugo.silva@example.com.br",
    "ines.kowalska@example.pl",
    "jon.berg@example.no",
]


def message_id(number: int) -> str:
    """The Message-ID delivery ``number`` was sent with."""
    return f"<20171102.{number}.{Signer(SECRET).message_tag(number, SALT)}@news.example.org>"


def scenario_settings(tmp_path: Path, db_url: str, **feedback: Any) -> Settings:
    editions = tmp_path / "editions"
    editions.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    return Settings(
        database_url=db_url,
        delivery_url=f"maildir:{tmp_path / 'outbox'}",
        secret_key=SECRET,
        editions_dir=editions,
        web={"public_url": "https://list.news.example.org"},
        delivery={"verp": True, "connections": 1},
        feedback=feedback,
    )


def send_scenario(db: Database, settings: Settings, tmp_path: Path) -> None:
    """Subscribers 1–10 in order, then the edition to them: delivery N is reader N."""
    path = tmp_path / "readers.csv"
    path.write_text("email\n" + "".join(f"{e}\n" for e in READERS), encoding="utf-8")
    assert import_csv(db, path, Clock(), confirmed=True).rejected == 0
    frozen = freeze_source(db, settings, "2017-11-02")
    with db.transaction() as session:
        session.execute(
            update(FrozenEdition).where(FrozenEdition.id == frozen.edition.id).values(salt=SALT)
        )
    frozen.edition.salt = SALT
    result = plan_send(db, settings, frozen.edition).sender.run()
    assert result.sent == len(READERS)
