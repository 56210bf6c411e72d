from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from subscribers import audience
from subscribers.addresses import parse_address, suppression_hash
from subscribers.audience import ConsentEvidence, Outcome
from subscribers.db import Database
from subscribers.errors import AddressError, NotSubscribedError, SuppressedError
from subscribers.models import ConsentMethod, Status, Subscriber, Suppression
from tests.helpers import Clock

EDITOR = ConsentEvidence(ConsentMethod.editor)
IMPORT = ConsentEvidence(ConsentMethod.import_)
FORM = ConsentEvidence(
    ConsentMethod.web_form, form_version="signup-v1", ip="192.0.2.7", user_agent="UA/1"
)


def test_address_validated_and_unique_regardless_of_case(db: Database, clock: Clock) -> None:
    """Ann@Example.org and ann@example.org are one subscriber; the typed form is kept."""
    with db.transaction() as session:
        first = audience.join(
            session, parse_address("Ann@Example.org"), clock(), EDITOR, confirmed=True
        )
        second = audience.join(
            session, parse_address(" ann@EXAMPLE.org "), clock(), EDITOR, confirmed=True
        )
        assert first.outcome is Outcome.added and second.outcome is Outcome.unchanged
    with db.transaction() as session:
        (row,) = session.scalars(select(Subscriber)).all()
        assert row.email == "Ann@Example.org"
        assert row.email_key == "ann@example.org"
    with pytest.raises(AddressError):
        parse_address("ann@@example.org")


def test_internationalised_address(db: Database, clock: Clock) -> None:
    """Non-ASCII addresses are accepted and found again."""
    with db.transaction() as session:
        audience.join(session, parse_address("josé@exámple.org"), clock(), EDITOR, name="José")
    with db.transaction() as session:
        assert audience.get(session, "JOSÉ@exámple.org").name == "José"


def test_double_opt_in_records_consent_and_history(db: Database, clock: Clock) -> None:
    """A form sign-up is pending with its evidence; confirming makes it active."""
    with db.transaction() as session:
        joined = audience.join(session, parse_address("reader@example.org"), clock(), FORM)
        assert joined.needs_confirmation and joined.subscriber.status is Status.pending
    clock.tick(minutes=5)
    with db.transaction() as session:
        subscriber = audience.get(session, "reader@example.org")
        assert audience.confirm(session, subscriber, clock())
        assert not audience.confirm(session, subscriber, clock())  # idempotent
    with db.transaction() as session:
        data = audience.person_data(audience.get(session, "reader@example.org"))
    assert data["status"] == "active"
    assert [c["to"] for c in data["status_history"]] == ["pending", "active"]
    (consent,) = data["consents"]
    assert consent["method"] == "web_form" and consent["ip"] == "192.0.2.7"
    assert consent["form_version"] == "signup-v1" and consent["user_agent"] == "UA/1"
    assert consent["confirmed_at"] is not None


@pytest.mark.parametrize("left", [Status.unsubscribed, Status.bounced, Status.complained])
def test_left_addresses_are_not_reactivated_by_editor_or_import(
    db: Database, clock: Clock, left: Status
) -> None:
    """Only a fresh, confirmed opt-in by the person brings a leaver back."""
    with db.transaction() as session:
        joined = audience.join(
            session, parse_address("gone@example.org"), clock(), EDITOR, confirmed=True
        )
        audience.change_status(session, joined.subscriber, left, clock(), "test")
    for evidence in (EDITOR, IMPORT):
        with db.transaction() as session, pytest.raises(SuppressedError, match=left.value):
            audience.join(
                session, parse_address("gone@example.org"), clock(), evidence, confirmed=True
            )
    with db.transaction() as session:
        again = audience.join(session, parse_address("gone@example.org"), clock(), FORM)
        assert again.subscriber.status is Status.pending and again.needs_confirmation
        audience.confirm(session, again.subscriber, clock())
        assert audience.get(session, "gone@example.org").status is Status.active


def test_unsubscribe_is_idempotent_and_keeps_stronger_status(db: Database, clock: Clock) -> None:
    """Leaving twice changes nothing; a bounced address stays bounced."""
    with db.transaction() as session:
        a = audience.join(session, parse_address("a@example.org"), clock(), EDITOR, confirmed=True)
        b = audience.join(session, parse_address("b@example.org"), clock(), EDITOR, confirmed=True)
        assert audience.unsubscribe(session, a.subscriber, clock(), "link")
        assert not audience.unsubscribe(session, a.subscriber, clock(), "link")
        audience.change_status(session, b.subscriber, Status.bounced, clock(), "5.1.1")
        assert not audience.unsubscribe(session, b.subscriber, clock(), "link")
        assert b.subscriber.status is Status.bounced


def test_erase_deletes_data_and_blocks_re_adding(db: Database, clock: Clock) -> None:
    """Erased: no row left but a hash; editors and imports cannot re-add; the person can."""
    with db.transaction() as session:
        audience.join(
            session, parse_address("erase.me@example.org"), clock(), EDITOR, confirmed=True
        )
    with db.transaction() as session:
        audience.erase(session, "Erase.Me@example.org", clock())
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
        (suppression,) = session.scalars(select(Suppression)).all()
        assert suppression.email_hash == suppression_hash("erase.me@example.org")
        with pytest.raises(NotSubscribedError):
            audience.get(session, "erase.me@example.org")
    with db.transaction() as session, pytest.raises(SuppressedError):
        audience.join(
            session, parse_address("erase.me@example.org"), clock(), IMPORT, confirmed=True
        )
    with db.transaction() as session:
        joined = audience.join(session, parse_address("erase.me@example.org"), clock(), FORM)
        audience.confirm(session, joined.subscriber, clock())
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_a_leaver_who_signs_up_again_is_activated_only_by_their_own_confirmation(
    db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Unsubscribed, then (anyone's) web form: neither an editor nor an import may activate."""
    from subscribers.csv_import import import_csv

    with db.transaction() as session:
        joined = audience.join(
            session,
            parse_address("ann@example.org"),
            clock(),
            audience.ConsentEvidence(ConsentMethod.editor),
            confirmed=True,
        )
        audience.unsubscribe(session, joined.subscriber, clock.tick(days=1), "one-click")
        audience.join(
            session,
            parse_address("ann@example.org"),
            clock.tick(days=1),
            audience.ConsentEvidence(ConsentMethod.web_form, ip="192.0.2.1"),
        )
    with db.transaction() as session, pytest.raises(SuppressedError, match="own"):
        audience.join(
            session,
            parse_address("ann@example.org"),
            clock(),
            audience.ConsentEvidence(ConsentMethod.editor),
            confirmed=True,
        )
    path = tmp_path / "list.csv"
    path.write_text("email\nann@example.org\n")
    report = import_csv(db, path, clock, confirmed=True)
    assert report.rejected == 1 and "own confirmation" in report.rejections[0].reason
    with db.transaction() as session:
        subscriber = audience.get(session, "ann@example.org")
        assert subscriber.status is Status.pending
        audience.confirm(session, subscriber, clock())
        assert audience.get(session, "ann@example.org").status is Status.active
