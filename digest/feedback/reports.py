"""Machine-written mail: delivery status notifications and abuse reports.

Bounces are detected by flufl.bounce (RFC 3464 DSNs plus the non-standard forms
of Exim, Postfix, qmail, Exchange and others), run only on messages that look
like one, because its heuristic detectors read the whole body. The status code
and diagnostic come from the ``message/delivery-status`` part when there is one.

A reader's words can look like a bounce ("since 5.1.1 of the new rota", a pasted
"The following addresses had permanent fatal errors"), so what counts is who
wrote it. Headers only a mail system writes (``Report.from_mailer``): a DSN part,
a ``MAILER-DAEMON``/``postmaster`` sender, ``X-Failed-Recipients``, a null
``Return-Path: <>``. A status code found in the text is read only from a mail
system's own address; a bounce-like subject alone lets flufl.bounce look for a
known mailer's layout, nothing more. Whether a report from a person answering
one of our deliveries is a bounce at all is decided in ``classify``.
Abuse reports follow ARF (RFC 5965): ``multipart/report`` with
``report-type=feedback-report`` and a ``message/feedback-report`` part.
"""

from __future__ import annotations

import email.utils
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from digest.send.bounces import Bounce, classify
from digest.send.smtp_codes import ENHANCED_STATUS

#: The local parts mail systems send bounces from.
_MAILER_ADDRESS = re.compile(r"^(mailer[-_]?daemon|mail-daemon|postmaster)@", re.IGNORECASE)
#: The names they sign them with: a hint only, as anyone can write a display name.
_MAILER_NAME = re.compile(r"mail delivery (subsystem|system)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|returned mail|failure notice|"
    r"mail delivery failed|delivery (has )?failed|delivery failure|could not be delivered|"
    r"delayed mail|warning: message .* delayed|nondeliverable|non-delivery",
    re.IGNORECASE,
)
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # it logs every detector run


@dataclass(frozen=True)
class Report:
    """A bounce or an abuse report, or neither (``kind`` None)."""

    kind: str | None = None  # "bounce" | "complaint"
    permanent: tuple[str, ...] = ()  # addresses that failed for good
    temporary: tuple[str, ...] = ()  # addresses still being retried
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # the ARF report's fields
    #: its headers say a mail system (or a feedback loop) wrote it; False when
    #: only its layout does, which a person's reply quoting a bounce can have too
    from_mailer: bool = False

    @property
    def is_hard(self) -> bool:
        """A permanent "no such address": the address itself is gone (the one bounce
        policy, ``digest.send.bounces``, which a refusal at send time follows too)."""
        return classify(self.status, permanent=self.is_permanent) is Bounce.hard

    @property
    def is_permanent(self) -> bool:
        if self.permanent:
            return True
        if self.temporary:
            return False
        return self.status is not None and self.status.startswith("5")


def read_report(message: Message, sender: str, subject: str) -> Report:
    """The abuse report or bounce ``message`` is, if its headers or layout say so."""
    param = message.get_param("report-type")
    report_type = ""
    if isinstance(param, str) and message.get_content_type() == "multipart/report":
        report_type = param.strip().lower()
    if report_type == "feedback-report" or _part(message, "message/feedback-report"):
        return Report(kind="complaint", fields=_arf_fields(message), from_mailer=True)
    dsn = report_type == "delivery-status" or _part(message, "message/delivery-status") is not None
    mail_system = (
        dsn
        or message.get("x-failed-recipients") is not None
        or bool(_MAILER_ADDRESS.match(email.utils.parseaddr(sender)[1]))
    )
    null_sender = _null_sender(message)
    hinted = bool(_MAILER_NAME.search(sender) or _BOUNCE_SUBJECT.search(subject))
    if not (mail_system or null_sender or hinted):
        return Report()
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping on odd input must not lose the message
        temporary, permanent = frozenset(), frozenset()
    status, diagnostic = _delivery_status(message)
    failed = _addresses(permanent)
    delayed = tuple(a for a in _addresses(temporary) if a not in failed)
    # A status code in the text is a bounce's only from a mail system: a reader's
    # "clause 4.4.2" or a vacation notice's "back on 5.11.17" is not.
    if not (failed or delayed or dsn or (status and (mail_system or (null_sender and hinted)))):
        return Report()  # words that merely sound like a bounce
    if not (failed or delayed) and status is not None and status.startswith("2"):
        return Report()  # a success notice (delivered, relayed): not a bounce
    return Report(
        kind="bounce",
        permanent=failed,
        temporary=delayed,
        status=status,
        diagnostic=diagnostic,
        from_mailer=mail_system or null_sender,
    )


def _null_sender(message: Message) -> bool:
    """``Return-Path: <>``: the envelope sender of bounces and of auto-replies."""
    return any(str(path).strip() == "<>" for path in message.get_all("return-path") or ())


def _addresses(found: frozenset[bytes]) -> tuple[str, ...]:
    out = []
    for item in found:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        text = text.strip().strip("<>").lower()
        if "@" in text:
            out.append(text)
    return tuple(sorted(set(out)))


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a ``message/delivery-status`` or ``message/feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):
        return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\r?\n", payload)]
    return []


def _arf_fields(message: Message) -> dict[str, str]:
    part = _part(message, "message/feedback-report")
    if part is None:
        return {}
    fields: dict[str, str] = {}
    for block in _field_blocks(part):
        for key, value in block.items():
            fields.setdefault(key.lower(), " ".join(str(value).split()))
    return fields


def _delivery_status(message: Message) -> tuple[str | None, str | None]:
    """The first recipient's status code and diagnostic, from the DSN or the text."""
    part = _part(message, "message/delivery-status")
    if part is not None:
        for block in _field_blocks(part):
            status = block.get("status")
            if status:
                diagnostic = block.get("diagnostic-code")
                return (
                    str(status).strip().split()[0],
                    " ".join(str(diagnostic).split()) if diagnostic else None,
                )
    for piece in message.walk():
        if piece.get_content_type() != "text/plain":
            continue
        payload = piece.get_payload(decode=True)
        if isinstance(payload, bytes):
            found = ENHANCED_STATUS.search(payload[:20000].decode("utf-8", "replace"))
            if found:
                return found.group(0), _line_of(payload, found.group(0))
        break
    return None, None


def _line_of(payload: bytes, needle: str) -> str | None:
    for line in payload[:20000].decode("utf-8", "replace").splitlines():
        if needle in line:
            return " ".join(line.split())[:500]
    return None
