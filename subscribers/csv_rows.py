"""Reading the rows of a CSV file with bounded memory, refusing rows that are too big.

The ``csv`` module reads whatever line its source hands it, so a file of one
huge line is held whole in memory (a 30 MB line of cells peaked at 340 MB), and
a quoted cell over its field limit raises ``csv.Error`` after which the reader
starts again on the next line: *inside* the quoted cell, so text in the middle
of a cell was imported as rows of its own. Here every row (the lines a quoted
cell spans included) is read through a budget of ``MAX_ROW_CHARS`` characters,
never more than that plus one at a time, and a row over the budget, with more
than ``MAX_CELLS`` cells or unreadable as CSV is a ``RowError``: the file cannot
be trusted past that point, so the caller stops there rather than guess where
the next row begins.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from subscribers.errors import RowError

__all__ = ["MAX_CELLS", "MAX_ROW_CHARS", "RowError", "Rows", "header_line"]

#: Characters in one row, line ends and the lines of a quoted cell included.
#: A subscriber's row is a few hundred; far below the csv module's field limit.
MAX_ROW_CHARS = 65_536
#: Cells in one row (a subscriber list has a few dozen columns at most).
MAX_CELLS = 1_000


class Rows:
    """The rows of ``text`` as lists of cells, each row within the limits above.

    ``line`` is the file line the last row started on (1 for the first), and
    ``chars`` how many characters that row took, for callers sizing batches.
    """

    def __init__(self, text: IO[str], delimiter: str) -> None:
        self._text = text
        self._budget = MAX_ROW_CHARS
        self._lines_read = 0
        self.line = 0
        self.chars = 0
        self._reader = csv.reader(self._physical_lines(), delimiter=delimiter)

    def _physical_lines(self) -> Iterator[str]:
        while True:
            # at most one character past the budget is ever read into memory
            line = self._text.readline(self._budget + 1)
            if not line:
                return
            if len(line) > self._budget:
                spans_lines = self._lines_read >= self.line  # a quoted cell went on
                raise RowError(
                    self.line,
                    f"is longer than {MAX_ROW_CHARS:,} characters, the limit for one row"
                    + (" (is a quoted cell missing its closing quote?)" if spans_lines else ""),
                )
            self._lines_read += 1
            self._budget -= len(line)
            yield line.replace("\0", "\ufffd")  # the csv module refuses NUL: shown as U+FFFD

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        self._budget = MAX_ROW_CHARS
        self.line = self._lines_read + 1
        try:
            cells = next(self._reader)
        except csv.Error as exc:
            raise RowError(self.line, f"cannot be read as CSV ({exc})") from exc
        self.chars = MAX_ROW_CHARS - self._budget
        if len(cells) > MAX_CELLS:
            raise RowError(
                self.line, f"has {len(cells):,} cells; the limit for one row is {MAX_CELLS:,}"
            )
        return cells


def header_line(text: IO[str]) -> str:
    """The file's first line, refused (``RowError``) if over ``MAX_ROW_CHARS``."""
    line = text.readline(MAX_ROW_CHARS + 1)
    if len(line) > MAX_ROW_CHARS:
        raise RowError(1, f"is longer than {MAX_ROW_CHARS:,} characters, the limit for one row")
    return line
