"""What a filed message is: the kinds feedback sorts mail into (pure, no database)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from digest.words import plural


class Kind(enum.StrEnum):
    reply = "reply"
    suggestion = "suggestion"
    auto_reply = "auto_reply"
    bounce = "bounce"
    complaint = "complaint"
    unsubscribe = "unsubscribe"
    other = "other"


#: How a count of each kind reads: ``1 reply``, ``2 replies``, ``1 auto reply``.
NOUNS: dict[Kind, tuple[str, str]] = {
    Kind.reply: ("reply", "replies"),
    Kind.suggestion: ("suggestion", "suggestions"),
    Kind.auto_reply: ("auto reply", "auto replies"),
    Kind.bounce: ("bounce", "bounces"),
    Kind.complaint: ("complaint", "complaints"),
    Kind.unsubscribe: ("unsubscribe", "unsubscribes"),
    Kind.other: ("other", "other"),
}


def counted(kinds: Mapping[str, int]) -> str:
    """``2 replies, 1 bounce``: counts by kind, in the order of their names."""
    return ", ".join(plural(count, *NOUNS[Kind(kind)]) for kind, count in sorted(kinds.items()))
