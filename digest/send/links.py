"""The public links in emails: confirm and unsubscribe, signed per subscriber.

The signing secret is ``secret_key`` when set (set it, identically, on every
machine that serves links). Otherwise one is generated on first use and kept in
``secret_key_file`` (mode 0600), so links keep working across restarts of a
single-machine install.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ConfigError
from digest.settings import Settings
from subscribers.errors import TokenError
from subscribers.models import Subscriber
from subscribers.tokens import Signer


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def unsubscribe_mailbox(settings: Settings) -> tuple[str, str]:
    """(local part, domain) of the mailto: unsubscribe address; tokens go after a ``+``."""
    domain = split_address(settings.publication.sender_email)[1]
    return split_address(settings.delivery.unsubscribe_address or f"unsubscribe@{domain}")


def bounce_mailbox(settings: Settings) -> tuple[str, str]:
    """(local part, domain) of the envelope sender; VERP tokens go after a ``+``."""
    domain = split_address(settings.publication.sender_email)[1]
    return split_address(settings.delivery.bounce_address or f"bounces@{domain}")


def signing_secret(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return _secret_from_file(settings.secret_key_file)


def _secret_from_file(path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return _secret_from_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot create the secret key file {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
        return secret
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    if len(secret) < 16:
        raise ConfigError(f"the secret key in {path} is shorter than 16 characters")
    return secret


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
