"""Errors of the audience layer.

``subscribers`` never imports ``digest``, so its errors have their own root;
the ``digest`` CLI reports them exactly like ``digest.errors.DigestError``.

::

    AudienceError              anything reported to a person as a clear message
    ├── DatabaseError          the database cannot be opened or migrated
    ├── AddressError           an email address is not valid
    ├── NotSubscribedError     no subscriber has that address
    ├── SuppressedError        the address was erased or left; it cannot be re-added
    ├── RowError               a CSV row over the limits, or unreadable as CSV
    ├── EncodingError          a CSV file's character encoding cannot be told
    ├── ImportStoppedError     a CSV import stopped at a row it cannot read safely
    └── TokenError             a confirm/unsubscribe link is forged, damaged or expired
        └── ExpiredTokenError  a confirmation link we signed is too old

Every public exception class of ``subscribers`` is defined here, and the tree
above is checked against the classes by ``tests/test_errors.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from subscribers.csv_import import ImportReport


class AudienceError(Exception):
    """Base of the audience layer's errors."""


class DatabaseError(AudienceError):
    """The database named by the URL cannot be opened or brought up to date."""


class AddressError(AudienceError):
    """An email address is not valid."""


class NotSubscribedError(AudienceError):
    """No subscriber has the given address."""


class SuppressedError(AudienceError):
    """The address may not be (re)activated by an import or an editor."""


class TokenError(AudienceError):
    """A signed link is forged, damaged or expired."""


class ExpiredTokenError(TokenError):
    """A confirmation link was signed by us but is too old."""


class ImportStoppedError(AudienceError):
    """A CSV import stopped at a row it cannot read safely; ``report`` has what it did."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class RowError(AudienceError):
    """A row the reader cannot get past safely; ``line`` is where the row starts."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class EncodingError(AudienceError):
    """No character encoding fits a CSV file's bytes: it is refused before any row."""
