"""The one bounce policy: which failures are hard or soft bounces, and when a reader is bounced.

A delivery can fail for good in two ways: the relay refuses it while we send
(``550 5.1.1`` at RCPT TO, ``552 5.2.2`` after DATA), or it is accepted and a
delivery report comes back later. Both are judged here, by the same table:

==========================================  =========  ======================================
permanent failure with enhanced status       bounce     counts toward
==========================================  =========  ======================================
5.1.1 5.1.2 5.1.3 5.1.6 5.1.10 (no such      hard       ``feedback.bounce_threshold``
address, domain or mailbox)
5.1.7 5.1.8 (our sender address refused)     none       nothing: the fault is ours
any other 5.x.x, or a 5xx without one        soft       ``feedback.soft_bounce_threshold``
(mailbox full, refused by policy)
a temporary failure (4xx, 4.x.x)             none       nothing (the send retries it)
==========================================  =========  ======================================

A refusal of our envelope sender (MAIL FROM) is never the reader's bounce.
Each bounce is recorded on its delivery (status ``failed``, the reply starting
``hard bounce:`` or ``soft bounce:``), and the threshold counts a reader's
distinct deliveries so recorded, whichever way each was learnt: two reports of
one delivery are one, and a refusal at send time counts like a report. The table is
pure (feedback's parsing uses it); the counting is in ``bounce_counts``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from digest.errors import TransportError
from digest.send import smtp_codes
from digest.settings import FeedbackSettings

#: Enhanced status codes that say the recipient's address does not exist.
HARD_STATUSES = frozenset(
    {
        smtp_codes.BAD_DESTINATION_MAILBOX,
        smtp_codes.BAD_DESTINATION_SYSTEM,
        smtp_codes.BAD_DESTINATION_SYNTAX,
        smtp_codes.MAILBOX_MOVED,
        smtp_codes.NULL_MX,
    }
)
#: Enhanced status codes that blame our sender address, not the recipient's.
SENDER_STATUSES = frozenset({smtp_codes.BAD_SENDER_MAILBOX, smtp_codes.BAD_SENDER_SYSTEM})


class Bounce(enum.StrEnum):
    hard = "hard"
    soft = "soft"

    @property
    def tag(self) -> str:
        """How a delivery's reply starts when it failed as this kind of bounce."""
        return f"{self.value} bounce: "


def classify(status: str | None, *, permanent: bool) -> Bounce | None:
    """A failure with this enhanced ``status``: hard, soft, or no bounce of the reader's."""
    if not permanent or status in SENDER_STATUSES:
        return None
    return Bounce.hard if status in HARD_STATUSES else Bounce.soft


def classify_reply(code: int | None, reply: str) -> Bounce | None:
    """An SMTP reply refusing a recipient or a message: 5xx is permanent, 4xx is not."""
    if code is None or not smtp_codes.is_permanent(code):
        return None
    return classify(smtp_codes.enhanced_status(reply), permanent=True)


def classify_refusal(error: TransportError) -> Bounce | None:
    """A refusal at send time: only the recipient's or the message's, never our sender's."""
    if error.reply is None or error.refused not in ("recipient", "message"):
        return None
    return classify_reply(error.code, error.reply)


def tagged(bounce: Bounce, reply: str) -> str:
    """The reply recorded on a delivery that failed as ``bounce``."""
    return bounce.tag + reply


def bounce_of(reply: str | None) -> Bounce | None:
    """Which bounce a recorded reply says it was, if any."""
    return next((b for b in Bounce if reply and reply.startswith(b.tag)), None)


@dataclass(frozen=True)
class Thresholds:
    """How many distinct bounced deliveries make a reader bounced (``[feedback]``)."""

    hard: int = 1
    soft: int = 3

    @classmethod
    def from_settings(cls, feedback: FeedbackSettings) -> Thresholds:
        return cls(feedback.bounce_threshold, feedback.soft_bounce_threshold)

    def of(self, bounce: Bounce) -> int:
        return self.hard if bounce is Bounce.hard else self.soft
