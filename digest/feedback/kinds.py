"""What a filed message is: the kinds feedback sorts mail into (pure, no database)."""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    reply = "reply"
    suggestion = "suggestion"
    auto_reply = "auto_reply"
    bounce = "bounce"
    complaint = "complaint"
    unsubscribe = "unsubscribe"
    other = "other"
