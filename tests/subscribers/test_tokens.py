from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from subscribers.errors import ExpiredTokenError, TokenError
from subscribers.models import Subscriber
from subscribers.tokens import Signer

SECRET = "a-test-secret-of-some-length"


def _subscriber(id_: int = 7, key: str = "ann@example.org") -> Subscriber:
    return Subscriber(id=id_, email=key, email_key=key)


def test_tokens_round_trip_and_name_their_subscriber() -> None:
    """A token names its subscriber and no other, even one with the same id later."""
    signer = Signer(SECRET)
    ann = _subscriber()
    claim = signer.read_unsubscribe(signer.unsubscribe_token(ann.id, ann.email_key))
    assert claim.subscriber_id == 7 and claim.names(ann)
    assert not claim.names(_subscriber(7, "someone.else@example.org"))
    assert not claim.names(None)
    assert signer.read_confirm(signer.confirm_token(ann), 3600).names(ann)


def test_tampered_and_foreign_tokens_are_rejected() -> None:
    """Changing one character, another secret, or the other purpose's token all fail."""
    signer = Signer(SECRET)
    token = signer.unsubscribe_token(7, "ann@example.org")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    signature = token.partition(".")[2]
    forged_payload = "WzgsIjEyMzQ1Njc4OTBhYiJd"  # [8, "1234567890ab"], unsigned
    for bad in (flipped, f"{forged_payload}.{signature}", "", "not-a-token", token + "x"):
        with pytest.raises(TokenError):
            signer.read_unsubscribe(bad)
    with pytest.raises(TokenError):
        Signer("another-secret-entirely").read_unsubscribe(token)
    with pytest.raises(TokenError):  # an unsubscribe token can't confirm
        signer.read_confirm(token, 3600)
    with pytest.raises(TokenError):  # and a confirm token can't unsubscribe
        signer.read_unsubscribe(signer.confirm_token(_subscriber()))


def test_confirm_tokens_expire_unsubscribe_tokens_do_not() -> None:
    """A week-old confirm link is refused as expired; a year-old unsubscribe link still works."""
    signer = Signer(SECRET)
    with time_machine.travel("2017-11-02 07:00:00+00:00", tick=False) as traveller:
        confirm = signer.confirm_token(_subscriber())
        unsubscribe = signer.unsubscribe_token(7, "ann@example.org")
        traveller.shift(7 * 86_400 - 60)
        assert signer.read_confirm(confirm, 7 * 86_400).subscriber_id == 7
        traveller.shift(120)
        with pytest.raises(ExpiredTokenError, match="expired"):
            signer.read_confirm(confirm, 7 * 86_400)
        traveller.shift(365 * 86_400)
        assert signer.read_unsubscribe(unsubscribe).subscriber_id == 7


def test_short_secret_is_refused() -> None:
    """A guessable secret would make every link guessable."""
    with pytest.raises(TokenError, match="16 characters"):
        Signer("short")


def test_message_tags_are_signed_per_delivery() -> None:
    """A reader who sees their own Message-ID can't derive another reader's."""
    signer = Signer("a-secret-of-some-length")
    mine, theirs = signer.message_tag(7, "salt"), signer.message_tag(8, "salt")
    assert len(mine) == 16 and mine != theirs
    assert signer.message_tag(7, "salt") == mine  # the same on a retry
    assert Signer("another-secret-of-length").message_tag(7, "salt") != mine


def test_a_confirm_token_names_its_sign_up() -> None:
    """A confirm token matches the sign-up it was made for, to the microsecond, and no other."""
    signer = Signer(SECRET)
    ann = _subscriber()
    ann.status_changed_at = datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC)
    claim = signer.read_confirm(signer.confirm_token(ann), 3600)
    assert claim.names(ann) and claim.is_for(ann.status_changed_at)
    assert not claim.is_for(ann.status_changed_at + timedelta(microseconds=1))
    assert not claim.is_for(None)


def test_tokens_made_on_the_fast_path_are_the_ones_itsdangerous_and_hmac_make() -> None:
    """Links in emails already sent must keep working: the same secret, the same tokens."""
    import hashlib
    import hmac

    from itsdangerous import URLSafeSerializer

    from subscribers.tokens import fingerprint

    secret = "a-secret-of-sixteen-or-more"
    signer = Signer(secret)
    reference = URLSafeSerializer(secret, salt="digest.subscribers.unsubscribe")
    for subscriber_id, key in [(1, "a@example.org"), (987_654, "zoë@exämple.org"), (2, "b@x.io")]:
        token = signer.unsubscribe_token(subscriber_id, key)
        assert token == reference.dumps([subscriber_id, fingerprint(key)])
        assert signer.read_unsubscribe(token).subscriber_id == subscriber_id
        mac = hmac.new(secret.encode(), f"digest.delivery:{subscriber_id}".encode(), hashlib.sha256)
        assert signer.delivery_token(subscriber_id) == f"{subscriber_id}-{mac.hexdigest()[:16]}"
        tag = hmac.new(secret.encode(), f"digest.message-id:s:{subscriber_id}".encode(), "sha256")
        assert signer.message_tag(subscriber_id, "s") == tag.hexdigest()[:16]
