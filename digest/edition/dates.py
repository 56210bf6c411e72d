"""The date an edition is named by: ``2017-11-02``, or a file ``2017-11-02.md``.

Apart from ``parse`` (YAML, Markdown), so a command that only looks a date up in the
ledger imports neither.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str) -> date | None:
    """A strict ``YYYY-MM-DD`` date, or ``None``."""
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def date_from_filename(path: str | Path) -> date | None:
    """The date a ``YYYY-MM-DD.md`` file name states, if it states one."""
    return parse_date(Path(path).stem)
