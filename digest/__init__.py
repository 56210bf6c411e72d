"""The digest publisher: a self-hosted daily newsletter digest.

The folder tree is the pipeline, and imports point one way (checked by import-linter):

``edition`` parses an edition file into an :class:`~digest.edition.model.Edition`;
``render`` turns it into HTML email and a plain-text twin with per-recipient fields left
open; ``ledger`` freezes it and writes a row per recipient; ``assemble`` builds *the*
edition of a day (file, queued and feed reads); ``send`` composes and hands over each
message; ``feedback`` files readers' replies, bounces and complaints; ``schedule`` runs
it all on time; ``web`` and ``cli`` are the thin faces over the same functions.
"""

__version__ = "0.1.0"
