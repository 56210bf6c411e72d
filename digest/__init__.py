"""The digest publisher: a self-hosted daily newsletter digest.

The folder tree is the pipeline, and imports point one way (checked by import-linter):

``edition`` parses an edition file into an :class:`~digest.edition.model.Edition`;
``render`` turns it into HTML email and a plain-text twin with per-recipient fields left
open; ``ledger`` freezes it and writes a row per recipient; ``assemble`` builds *the*
edition of a day (file, queued and feed reads); ``send`` composes and hands over each
message; ``feedback`` files readers' replies, bounces and complaints; ``schedule`` runs
it all on time; ``web`` and ``cli`` are the thin faces over the same functions.
"""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"

#: Set (by digest.send.workers) for a sender process it starts: a Ctrl-C or SIGTERM sent
#: to the process group must not kill it while it is still importing, before its own
#: handlers are in. It ignores them from its first import of this package until then.
HELPER_STARTING = "DIGEST_SENDER_HELPER_STARTING"

# Only in a process multiprocessing spawned: another process started meanwhile by another
# thread inherits the variable too, and must keep its Ctrl-C.
if _os.environ.pop(HELPER_STARTING, None) and "--multiprocessing-fork" in _sys.orig_argv:
    for _number in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_number, _signal.SIG_IGN)
