"""Which character encoding a CSV file is in, as spreadsheets save them.

Excel's "CSV UTF-8" starts with a UTF-8 byte-order mark, its "Unicode text" is
UTF-16 with one (and tab-separated), its plain "CSV" is the system's code page
(Windows-1252 in Western Europe and the Americas). A BOM decides; without one,
a sample does: the start of the file and, when that is all ASCII (a long list
whose first accented name comes late), the lines around the first byte that is
not. A sample that is valid UTF-8 is UTF-8; any other is charset-normalizer's to
tell. Only that sample is ever held in memory. A file no encoding fits (random
bytes, a spreadsheet's binary format) is refused at once with ``EncodingError``
rather than imported row by row as garbage.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import IO

from charset_normalizer import from_bytes

from subscribers.errors import EncodingError

__all__ = ["SAMPLE_BYTES", "Encoding", "EncodingError", "detect"]

#: Bytes of the file (start, or around its first non-ASCII byte) the guess is made on.
SAMPLE_BYTES = 65_536
#: Bytes read at a time while looking for the first non-ASCII byte.
_SCAN_BYTES = 1_048_576
_NON_ASCII = re.compile(rb"[\x80-\xff]")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"),
)
#: What to save the file as, when its encoding cannot be told.
ADVICE = 'save it from your spreadsheet as "CSV UTF-8 (comma delimited)" and import that'


@dataclass(frozen=True)
class Encoding:
    """``codec`` reads the file (a BOM included); ``name`` is what people call it."""

    codec: str
    name: str
    detected: bool  # guessed from the content, not given by a BOM

    def __str__(self) -> str:
        return f"{self.name} ({'detected' if self.detected else 'byte-order mark'})"

    @property
    def errors(self) -> str:
        """How undecodable bytes are read: as U+FFFD in UTF-16 (whose decoder cannot
        escape them), else as surrogate escapes that a rejects file writes back as they were.
        Either way the row is rejected as not valid text."""
        return "replace" if self.codec.startswith("utf-16") else "surrogateescape"


UTF8 = Encoding("utf-8", "UTF-8", True)


def detect(raw: IO[bytes], name: str) -> Encoding:
    """The encoding of the seekable file ``raw`` (left at its start); ``name`` is for errors."""
    head = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    for bom, codec, bom_name in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, bom_name, False)
    sample = head if not head.isascii() else _around_first_non_ascii(raw, len(head))
    raw.seek(0)
    if sample is None or _is_utf8(sample):  # all ASCII (or empty) is UTF-8 too
        return UTF8
    best = from_bytes(_whole_lines(sample)).best()
    if best is None:
        raise EncodingError(
            f"{name}: cannot tell which character encoding the file is in (is it a CSV "
            f"file?); {ADVICE}"
        )
    codec = codecs.lookup(best.encoding).name
    if codec == "ascii":
        return UTF8
    if codec not in ("utf-8", "utf-16", "utf-16-le", "utf-16-be") and (
        "cp1252" in best.could_be_from_charset
    ):
        codec = "cp1252"  # the same text either way: say the one spreadsheets write
    return Encoding(codec, _label(codec), True)


def _around_first_non_ascii(raw: IO[bytes], start: int) -> bytes | None:
    """``SAMPLE_BYTES`` from the start of the line holding the first non-ASCII byte."""
    raw.seek(start)
    offset = start
    while chunk := raw.read(_SCAN_BYTES):
        found = None if chunk.isascii() else _NON_ASCII.search(chunk)
        if found is not None:
            first = offset + found.start()
            raw.seek(max(0, first - 1024))
            before = raw.read(first - max(0, first - 1024))
            line_start = first - len(before) + before.rfind(b"\n") + 1
            raw.seek(line_start)
            return raw.read(SAMPLE_BYTES)
        offset += len(chunk)
    return None


def _is_utf8(sample: bytes) -> bool:
    """Valid UTF-8 (a character cut at the sample's end allowed): text in another
    encoding almost never is, so no guess is needed."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _whole_lines(sample: bytes) -> bytes:
    """The sample cut after its last line end, so no character is cut in two."""
    if len(sample) < SAMPLE_BYTES:
        return sample
    end = sample.rfind(b"\n")
    if end < 0:
        return sample
    end += 1
    if sample[end : end + 1] == b"\0":  # "\n" of UTF-16 LE is two bytes
        end += 1
    return sample[:end]


def _label(codec: str) -> str:
    if codec.startswith("cp125"):
        return f"Windows-{codec[2:]}"
    return codec.upper().replace("_", "-")
