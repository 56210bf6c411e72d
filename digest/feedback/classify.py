"""What kind of message it is. Pure: the parsed message and the publication's addresses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.feedback.kinds import Kind
from digest.feedback.parse import Parsed
from digest.send.mailboxes import bounce_mailbox, unsubscribe_mailbox
from digest.settings import Settings

#: Reply and forward prefixes of common mail clients, in several languages.
_PREFIX = re.compile(
    r"^\s*((re|aw|sv|antw|vs|odp|wg|fwd?|tr|rv|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


@dataclass(frozen=True)
class Mailboxes:
    """The publication's addresses that readers' mail arrives at."""

    contact: str
    unsubscribe: tuple[str, str]  # (local part, domain)
    bounce: tuple[str, str]
    suggest_subjects: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailboxes:
        publication = settings.publication
        local, domain = unsubscribe_mailbox(settings)
        bounce_local, bounce_domain = bounce_mailbox(settings)
        return cls(
            contact=str(publication.contact_email).lower(),
            unsubscribe=(local.lower(), domain.lower()),
            bounce=(bounce_local.lower(), bounce_domain.lower()),
            suggest_subjects=(publication.suggest_subject.casefold(), "share my story"),
        )

    def token_in(self, address: str, which: tuple[str, str]) -> str | None:
        """The ``+TOKEN`` of ``local+TOKEN@domain``; "" for the bare address; None if not it."""
        local, _, domain = address.lower().rpartition("@")
        base, plus, token = local.partition("+")
        if domain != which[1] or base != which[0]:
            return None
        return token if plus else ""

    def is_unsubscribe(self, parsed: Parsed) -> bool:
        return any(self.token_in(a, self.unsubscribe) is not None for a in parsed.recipients)

    def accepts(self, address: str) -> bool:
        """Mail for this address is ours to file (the inbound SMTP listener asks)."""
        return (
            address.lower() == self.contact
            or self.token_in(address, self.unsubscribe) is not None
            or self.token_in(address, self.bounce) is not None
        )


def base_subject(subject: str) -> str:
    """The subject without ``Re:``/``Fwd:``/``AW:`` prefixes, case-folded, for comparing."""
    return " ".join(_PREFIX.sub("", subject).split()).casefold()


def is_bounce(parsed: Parsed, *, answers_ours: bool) -> bool:
    """The one decision of what is a bounce, and so may turn a reader off.

    ``read_report`` found a bounce by its headers (a mail system wrote it) or only by
    its layout. A layout is not enough from a person answering one of our deliveries
    (``answers_ours``: linked by In-Reply-To/References): that is a reader's reply
    quoting or pasting a bounce. Real bounces that carry In-Reply-To (Gmail's, Microsoft
    365's) come from a mail system, so they stay bounces.
    """
    report = parsed.report
    return report.kind == "bounce" and (report.from_mailer or not answers_ours)


def classify(
    parsed: Parsed, mailboxes: Mailboxes, *, linked: bool, answers_ours: bool = False
) -> Kind:
    """Reports first (they are often marked auto-submitted too), then the reader's intent.

    ``linked``: it names one of our deliveries or subscribers; ``answers_ours``: through
    In-Reply-To/References (``Link.answers_ours``).
    """
    if parsed.report.kind == "complaint":
        return Kind.complaint
    if is_bounce(parsed, answers_ours=answers_ours):
        return Kind.bounce
    if mailboxes.is_unsubscribe(parsed):
        return Kind.unsubscribe
    if parsed.auto_reply:
        return Kind.auto_reply
    if base_subject(parsed.subject).startswith(mailboxes.suggest_subjects):
        return Kind.suggestion
    if linked:  # an In-Reply-To that is not ours proves nothing (spam uses it)
        return Kind.reply
    return Kind.other
