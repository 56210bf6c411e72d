"""The public links in emails: confirm and unsubscribe, signed per subscriber.

The signing secret comes from :mod:`digest.send.secret`.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import ConfigError
from digest.send.secret import signing_secret
from digest.settings import Settings
from subscribers.errors import TokenError
from subscribers.models import Subscriber
from subscribers.tokens import Signer


@dataclass(frozen=True)
class Links:
    """Builds the signed links for one publication."""

    public_url: str
    signer: Signer

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        try:
            signer = Signer(signing_secret(settings))
        except TokenError as exc:
            raise ConfigError(f"secret_key: {exc}") from exc
        return cls(settings.web.public_url, signer)

    def confirm_url(self, subscriber: Subscriber) -> str:
        return f"{self.public_url}/confirm/{self.signer.confirm_token(subscriber)}"

    def unsubscribe_url(self, subscriber: Subscriber) -> str:
        return self.unsubscribe_url_for(subscriber.id, subscriber.email_key)

    def unsubscribe_url_for(self, subscriber_id: int, email_key: str) -> str:
        return f"{self.public_url}/unsubscribe/{self.signer.unsubscribe_token(subscriber_id, email_key)}"
