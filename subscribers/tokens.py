"""Signed links: confirm a subscription, leave the list.

A token names a subscriber by id and carries a short fingerprint of their
address, signed with the publication's secret (itsdangerous, HMAC-SHA1 with a
per-purpose salt), so it can't be forged, guessed, or used for another purpose.
The fingerprint makes a token die with its address: after an erase, a new
subscriber who happens to get the same id is not reachable by the old link.

Confirmation tokens expire (a stale sign-up should not activate months later),
and each belongs to one sign-up: it carries the moment that sign-up began (the
pending subscriber's ``status_changed_at``), so a link from before the person
unsubscribed and signed up again confirms nothing. Links made before tokens
carried that moment are matched by when they were signed instead.
Unsubscribe tokens do not expire: a reader must be able to leave from any email
they ever received.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous import Signer as _ItsdangerousSigner
from itsdangerous.signer import HMACAlgorithm

from subscribers.errors import ExpiredTokenError, TokenError
from subscribers.models import Subscriber

_CONFIRM_SALT = "digest.subscribers.confirm"
_UNSUBSCRIBE_SALT = "digest.subscribers.unsubscribe"
_DELIVERY_SALT = "digest.delivery"
_MESSAGE_ID_SALT = "digest.message-id"


@dataclass(frozen=True)
class Claim:
    """Who a valid token speaks for."""

    subscriber_id: int
    fingerprint: str

    def names(self, subscriber: Subscriber | None) -> bool:
        return subscriber is not None and fingerprint(subscriber.email_key) == self.fingerprint


@dataclass(frozen=True)
class ConfirmClaim(Claim):
    """A confirmation token's claim: also which sign-up it was sent for."""

    signed_up: int | None  # the sign-up's start (see ``moment``); None in older links
    issued_at: datetime  # when the link was signed

    def is_for(self, sign_up: datetime | None) -> bool:
        """Whether this link was sent for the sign-up that began at ``sign_up``.

        Older links carry no sign-up: they count if they were signed after it began
        (to the second, as they record it), which a link from an earlier sign-up
        of the same person never is.
        """
        if sign_up is None:
            return False
        if self.signed_up is not None:
            return self.signed_up == moment(sign_up)
        return self.issued_at >= sign_up.astimezone(UTC).replace(microsecond=0)


def moment(when: datetime) -> int:
    """A point in time as whole microseconds since the epoch, exact in a token."""
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def fingerprint(email_key: str) -> str:
    return hashlib.sha256(email_key.encode("utf-8")).hexdigest()[:12]


class _KeyDerivedOnce(_ItsdangerousSigner):
    """itsdangerous's signer, deriving its key once instead of for every token.

    Every email carries an unsubscribe token, so its signing is on the send's hot path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        wanted = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
        key = self._derived.get(wanted)
        if key is None:
            key = self._derived[wanted] = super().derive_key(secret_key)
        return key


class _KeyedOnce(HMACAlgorithm):
    """itsdangerous's HMAC, its key set up once and copied for every signature."""

    def __init__(self, digest_method: Any = None) -> None:
        super().__init__(digest_method)
        self._keyed: dict[bytes, Any] = {}

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        keyed = self._keyed.get(key)
        if keyed is None:
            keyed = self._keyed[key] = hmac.new(key, digestmod=self.digest_method)
        mac = keyed.copy()
        mac.update(value)
        return bytes(mac.digest())


class Signer:
    """Makes and checks the tokens in confirm and unsubscribe links."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise TokenError("the secret key must be at least 16 characters long")
        self._secret = secret.encode("utf-8")
        self._confirm = URLSafeTimedSerializer(secret, salt=_CONFIRM_SALT)
        self._unsubscribe = URLSafeSerializer(
            secret,
            salt=_UNSUBSCRIBE_SALT,
            signer=_KeyDerivedOnce,
            signer_kwargs={"algorithm": _KeyedOnce(_ItsdangerousSigner.default_digest_method)},
        )
        self._unsubscribe_signer = self._unsubscribe.make_signer()  # what ``dumps`` makes each time
        keyed = hmac.new(self._secret, digestmod=hashlib.sha256)
        self._keyed = keyed  # copied per token: the key's setup done once

    def confirm_token(self, subscriber: Subscriber) -> str:
        """The link for the pending subscriber's current sign-up (see the module doc)."""
        started = subscriber.status_changed_at
        payload = [
            subscriber.id,
            fingerprint(subscriber.email_key),
            None if started is None else moment(started),
        ]
        return str(self._confirm.dumps(payload))

    def unsubscribe_token(self, subscriber_id: int, email_key: str) -> str:
        # ``dumps`` itself, with the signer made once (tests/subscribers/test_tokens.py)
        payload = self._unsubscribe.dump_payload([subscriber_id, fingerprint(email_key)])
        return self._unsubscribe_signer.sign(payload).decode("utf-8")

    def read_confirm(self, token: str, max_age_seconds: int) -> ConfirmClaim:
        try:
            payload, signed = self._confirm.loads(
                token, max_age=max_age_seconds, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise ExpiredTokenError("this confirmation link has expired") from exc
        except BadSignature as exc:
            raise TokenError("this confirmation link is not valid") from exc
        if isinstance(payload, list) and len(payload) == 3:
            *payload, signed_up = payload
            if signed_up is not None and (
                not isinstance(signed_up, int) or isinstance(signed_up, bool)
            ):
                raise TokenError("this confirmation link is not valid")
        else:
            signed_up = None
        claim = _claim(payload, "confirmation")
        issued_at = signed if signed.tzinfo else signed.replace(tzinfo=UTC)
        return ConfirmClaim(claim.subscriber_id, claim.fingerprint, signed_up, issued_at)

    def read_unsubscribe(self, token: str) -> Claim:
        try:
            payload = self._unsubscribe.loads(token)
        except BadSignature as exc:
            raise TokenError("this unsubscribe link is not valid") from exc
        return _claim(payload, "unsubscribe")

    def delivery_token(self, delivery_id: int) -> str:
        """A short, lower-case token for one delivery, fit for an address's local part.

        It goes into VERP return paths (``bounces+TOKEN@``) and the mailto:
        unsubscribe address, which mail servers may lower-case.
        """
        return f"{delivery_id}-{self._mac(delivery_id)}"

    def read_delivery_token(self, token: str) -> int:
        number, _, mac = token.strip().lower().partition("-")
        if number.isdigit() and hmac.compare_digest(mac, self._mac(int(number))):
            return int(number)
        raise TokenError("not a delivery token of this publication")

    def message_tag(self, delivery_id: int, salt: str) -> str:
        """The per-delivery part of a Message-ID: a reader who sees their own can't
        work out anyone else's, so a returned Message-ID is as good as a token."""
        mac = self._keyed.copy()
        mac.update(f"{_MESSAGE_ID_SALT}:{salt}:{delivery_id}".encode())
        return mac.hexdigest()[:16]

    def _mac(self, delivery_id: int) -> str:
        mac = self._keyed.copy()
        mac.update(f"{_DELIVERY_SALT}:{delivery_id}".encode())
        return mac.hexdigest()[:16]


def _claim(payload: object, what: str) -> Claim:
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], int)
        and isinstance(payload[1], str)
    ):
        return Claim(payload[0], payload[1])
    raise TokenError(f"this {what} link is not valid")
