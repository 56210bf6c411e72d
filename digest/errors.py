"""Every error the publisher raises on purpose, in one tree.

::

    DigestError                 anything the CLI reports as a clear message
    ├── ConfigError             digest.toml / DIGEST_* settings are unusable
    ├── SourceNotFoundError     an edition named by path or date does not exist
    ├── EditionError            an edition file is invalid; carries every Problem
    ├── TemplateError           a template is missing or fails to render
    ├── RenderError             the rendered email is unusable
    │   └── EmailTooLargeError  the HTML passes the size limit (Gmail clips it)
    ├── ReadError               a read's page or a feed can't be fetched or understood
    ├── TransportError          a message could not be handed over (code, reply, permanent…)
    ├── UnsafeAddressError      an address can't be written into a header without changing meaning
    ├── SendBusyError           another process is sending this edition (SQLite)
    ├── EditionPausedError      the edition is paused; ``digest resume`` lets it go on
    ├── NoRecipientsError       a send would reach nobody: no active subscriber, nothing frozen
    ├── SendPaused              a send paused itself after too many failures in a row
    ├── ScheduleError           a time or job an editor named can't be used
    ├── FetchError              the feedback mailbox can't be reached or read
    ├── FeedbackSourceError     a path to import feedback from is no message or mailbox
    └── ParseLimitError         a message is past the work parsing may spend on it

Every public exception class of ``digest`` is defined here, and the tree above is
checked against the classes by ``tests/test_errors.py``.

The CLI turns a ``DigestError`` into a message on stderr and a non-zero exit
status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


class DigestError(Exception):
    """Base of every error the publisher reports to a person."""


class ConfigError(DigestError):
    """The settings file or an environment override is unusable."""


class SourceNotFoundError(DigestError):
    """No edition file could be found for what the user named."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an edition file, located as precisely as it can be."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


def in_line_order(problems: list[Problem]) -> list[Problem]:
    """``problems`` by line, those with no line first; found order breaks ties."""
    return sorted(problems, key=lambda p: -1 if p.line is None else p.line)


class EditionError(DigestError):
    """An edition file is invalid. All problems found are reported at once, in line order
    (those about the whole file, with no line, first)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = in_line_order(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, path: str | Path, line: int | None, message: str) -> EditionError:
        return cls([Problem(str(path), line, message)])


class TemplateError(DigestError):
    """A template is missing, malformed, or refers to an undefined value."""


class RenderError(DigestError):
    """The rendered email cannot be used as it is."""


class EmailTooLargeError(RenderError):
    """The HTML is larger than the configured limit; Gmail would clip it."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the HTML email is {size:,} bytes, over the limit of {limit:,} bytes: "
            "Gmail clips messages past about 102 KB and hides the footer with the "
            "unsubscribe link. Shorten the edition (fewer or shorter sections or reads), "
            "or pass --allow-large / raise render.max_html_bytes if you accept clipping."
        )


class ReadError(DigestError):
    """A read's page or a feed could not be fetched or understood."""


class TransportError(DigestError):
    """A message could not be handed over.

    ``code``: the SMTP reply code, when there was one. ``permanent``: retrying
    won't help. ``per_message``: only this message or recipient was refused; the
    transport itself still works for others. ``refused``: what the server refused
    (``"sender"``, ``"recipient"`` or ``"message"``) and ``reply`` its words, for
    the bounce policy (``digest.send.bounces``).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        permanent: bool = False,
        per_message: bool = False,
        refused: str | None = None,
        reply: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.per_message = per_message
        self.refused = refused
        self.reply = reply


class UnsafeAddressError(DigestError):
    """An email address that can't be written into a header without changing its meaning."""


class SendBusyError(DigestError):
    """Another process is already sending this edition (SQLite)."""


class EditionPausedError(DigestError):
    """The edition is paused; ``digest resume`` lets it go on."""


class NoRecipientsError(DigestError):
    """A new send would reach nobody (no active subscriber), so nothing is frozen.

    Freezing an edition for nobody would leave it sent for good: every later
    ``digest send DATE`` would find nothing left to send. Once readers are added,
    ``digest send DATE`` sends it to them.
    """

    def __init__(self, day: date | None) -> None:
        self.day = day
        what = f"the edition of {day.isoformat()}" if day else "the edition"
        again = f"`digest send {day.isoformat()}`" if day else "`digest send`"
        super().__init__(
            f"{what} would reach nobody: there is no active subscriber. Nothing was frozen; "
            "add readers (`digest subscribers import FILE --confirmed`, or `digest "
            f"subscribers add EMAIL --confirmed`), then {again} sends it to them."
        )


class SendPaused(DigestError):
    """The send stopped itself after too many failures in a row."""


class ScheduleError(DigestError):
    """A time or job an editor named can't be used."""


class FetchError(DigestError):
    """The mailbox could not be reached or read; the message says why, without the password."""


class FeedbackSourceError(DigestError):
    """The path given to ``digest feedback import`` is not a message or a mailbox."""


class ParseLimitError(DigestError):
    """Parsing one message was given up past a limit (``digest/feedback/bounds.py``); the
    message says which. Filing catches it: the message is filed as other with the reason."""
