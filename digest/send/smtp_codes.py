"""SMTP reply codes (RFC 5321) and enhanced status codes (RFC 3463), named once.

The sender reads them in a relay's answers, the bounce policy reads them in
refusals and delivery reports, and ``digest feedback listen`` answers with them.
"""

from __future__ import annotations

import re

# ---- reply codes (RFC 5321 section 4.2.3) ---------------------------------------

OK = 250  # requested action okay, completed
WILL_FORWARD = 251  # user not local; will forward
START_MAIL_INPUT = 354  # the answer to DATA: send the message
SERVICE_CLOSING = 421  # the server is closing the session: try again on a new one
LOCAL_ERROR = 451  # aborted: local error in processing (try again later)
MAILBOX_UNAVAILABLE = 550  # mailbox unavailable (no such user, or refused by policy)

#: A recipient the server took (RCPT TO).
RECIPIENT_ACCEPTED = frozenset({OK, WILL_FORWARD})


def is_transient(code: int) -> bool:
    """4xx: the same command may work later."""
    return 400 <= code < 500


def is_permanent(code: int) -> bool:
    """5xx: the same command will fail again."""
    return 500 <= code < 600


# ---- enhanced status codes (RFC 3463), class.subject.detail ---------------------

#: One enhanced status code in a reply or a report, e.g. ``5.1.1``.
ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")

BAD_DESTINATION_MAILBOX = "5.1.1"  # no such user
BAD_DESTINATION_SYSTEM = "5.1.2"  # no such domain
BAD_DESTINATION_SYNTAX = "5.1.3"  # the address cannot be a mailbox
MAILBOX_MOVED = "5.1.6"  # the mailbox has moved, no forwarding address
BAD_SENDER_MAILBOX = "5.1.7"  # our envelope sender is refused
BAD_SENDER_SYSTEM = "5.1.8"  # our envelope sender's domain is refused
NULL_MX = "5.1.10"  # the domain accepts no mail (RFC 7505)


def enhanced_status(text: str) -> str | None:
    """The first enhanced status code in ``text`` (not one inside an IP address)."""
    found = ENHANCED_STATUS.search(text)
    return found.group(0) if found else None


# ---- what ``digest feedback listen`` answers --------------------------------------

REPLY_RECIPIENT_OK = f"{OK} 2.1.5 OK"
REPLY_NO_SUCH_MAILBOX = f"{MAILBOX_UNAVAILABLE} {BAD_DESTINATION_MAILBOX} no such mailbox here"
REPLY_FILED = f"{OK} 2.0.0 filed"
REPLY_TRY_LATER = f"{LOCAL_ERROR} 4.3.0 could not store the message; please try again later"
