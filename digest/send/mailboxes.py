"""Which addresses are ours: the mailto: unsubscribe mailbox, the envelope sender, the List-Id.

Pure (settings in, addresses out), so compose writes them and feedback's classifier
recognises them without touching the database.
"""

from __future__ import annotations

from digest.settings import Settings


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


def list_id(settings: Settings) -> str:
    """The List-Id our editions carry: ``delivery.list_id``, or 'Name <briefing.domain>'."""
    domain = split_address(settings.publication.sender_email)[1]
    return settings.delivery.list_id or f"{settings.publication.name} <briefing.{domain}>"
