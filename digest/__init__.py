"""The digest publisher: a self-hosted daily newsletter digest.

The pipeline runs one way: ``content`` parses an edition file into an
:class:`~digest.edition.model.Edition`, ``render`` turns it into HTML email and a
plain-text twin with per-recipient ``[[placeholders]]`` left open, and the
sending step fills those placeholders per recipient.
"""

__version__ = "0.1.0"
