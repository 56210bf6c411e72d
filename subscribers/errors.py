"""Errors of the audience layer.

``subscribers`` never imports ``digest``, so its errors have their own root;
the ``digest`` CLI reports them exactly like ``digest.errors.DigestError``.

::

    AudienceError              anything reported to a person as a clear message
    ├── DatabaseError          the database cannot be opened or migrated
    ├── AddressError           an email address is not valid
    ├── NotSubscribedError     no subscriber has that address
    ├── SuppressedError        the address was erased or left; it cannot be re-added
    └── TokenError             a confirm/unsubscribe link is forged, damaged or expired
        └── ExpiredTokenError  a confirmation link we signed is too old

Every public exception class of ``subscribers`` is defined here, and the tree
above is checked against the classes by ``tests/test_errors.py``.
"""

from __future__ import annotations


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
