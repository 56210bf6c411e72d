"""The skeleton ``digest new`` writes, and how its sample text is recognised.

The skeleton's sample text is there to be replaced, never sent. Each sample line carries
a fixed phrase, and its sample link points into ``example.invalid`` (a name reserved
never to resolve), so a file still holding any of it is recognised wherever it stands:
a skeleton filled in only in part (the dek written, a section still the sample) too.
``digest.assemble.day`` asks :func:`skeleton_problems` for every edition it assembles,
so ``digest check`` and every path that sends refuse such a file, naming each line.

Pure: works on the file's text; no file, database or network.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from pathlib import Path
from urllib.parse import urlsplit

from digest.errors import Problem

#: The host of the skeleton's sample link: reserved (RFC 2606), it never resolves.
SAMPLE_HOST = "example.invalid"

SKELETON = """---
date: {day}
title: {title}
summary: ""
reads: []
---
## A headline that says what happened

Two or three short paragraphs: what happened, why it matters, what comes next.
Name your sources and link them, [like this](https://example.invalid/your-source).
"""

#: The sample sentences, whole, compared lower-case with line breaks and runs of spaces as
#: one space (an editor may re-wrap the paragraph). Whole sentences, so a story that
#: happens to say "what happened, why it matters" is not taken for the sample. They are
#: also the sentences of the skeleton earlier versions wrote, so those files are caught.
SAMPLE_PHRASES = (
    "## a headline that says what happened",
    "two or three short paragraphs: what happened, why it matters, what comes next",
    "name your sources and link them, [like this](",
)

#: Sample links of skeletons earlier versions wrote (their host was a real one).
OLD_SAMPLE_LINKS = ("https://example.org/source",)

_URL = re.compile(r"https?://[^\s<>()\[\]\"']+", re.IGNORECASE)


def _sample_link(line: str) -> str | None:
    for match in _URL.finditer(line):
        url = match.group(0).rstrip(".,;:!?")
        host = (urlsplit(url).hostname or "").rstrip(".")
        if host == SAMPLE_HOST or url.lower() in OLD_SAMPLE_LINKS:
            return url
    return None


def skeleton_problems(text: str, path: str | Path = "<edition>") -> list[Problem]:
    """One problem for each line of ``text`` where the skeleton's sample text stands.

    ``text`` is the file's text as :func:`digest.edition.parse.normalised` gives it, so
    line numbers agree with the parser's. A phrase is found however the paragraph is
    wrapped; it is reported on the line where it starts.
    """
    lines = text.split("\n")
    flat, starts = "", []  # the text with spaces collapsed; where each line begins in it
    for line in lines:
        starts.append(len(flat))
        flat += " ".join(line.split()) + " "
    lower = flat.lower()
    found: dict[int, str] = {}
    for phrase in SAMPLE_PHRASES:
        at = lower.find(phrase)
        while at != -1:
            number = bisect_right(starts, at)
            line_end = (starts[number] if number < len(starts) else len(flat)) - 1
            if not phrase.startswith("#") or at + len(phrase) == line_end:  # a whole heading
                words = flat[at : at + len(phrase)].lstrip("# ").split()
                quoted = " ".join(words[:5]).rstrip(":,")
                found.setdefault(number, f"sample text ('{quoted}…')")
            at = lower.find(phrase, at + 1)
    for number, line in enumerate(lines, start=1):
        link = _sample_link(line)
        if link is not None:
            found.setdefault(number, f"sample link {link}")
    return [
        Problem(
            str(path),
            number,
            f"{what} from the `digest new` skeleton: write the edition's own or delete "
            "it; an edition with sample text is never sent",
        )
        for number, what in sorted(found.items())
    ]
