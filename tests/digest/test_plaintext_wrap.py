"""The text twin's line wrapping gives exactly the lines ``textwrap.wrap`` gives."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.render.plaintext import WIDTH, wrap_line

#: Words and spaces of every kind that wrapping treats apart: tabs and newlines (become
#: spaces), no-break and em spaces (not places to break), words longer than a line.
_PIECES = st.sampled_from(
    ["a", "word", "it's", "é—", "x" * 30, "y" * 80, " ", " ", "  ", "\t", "\n", "\u00a0", "\u2003"]
)
_INDENTS = st.sampled_from(["", "   ", "> ", "- ", "1. ", "> > - ", "      "])


def wrapped(text: str, first: str, rest: str, width: int) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(_PIECES, max_size=40).map("".join),
    _INDENTS,
    _INDENTS,
    st.sampled_from([WIDTH, 12, 6, 3]),
)
def test_same_lines_as_textwrap(text: str, first: str, rest: str, width: int) -> None:
    assert wrap_line(text, first, rest, width) == wrapped(text, first, rest, width)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "word", "it's", "é—", "x" * 30, "y" * 80]), max_size=40).map(
        " ".join
    ),
    _INDENTS,
    _INDENTS,
    st.sampled_from([WIDTH, 12, 6]),
)
def test_same_lines_as_textwrap_for_plain_paragraphs(
    text: str, first: str, rest: str, width: int
) -> None:
    """Single spaces between words: the usual paragraph, cut without textwrap's loop."""
    assert wrap_line(text, first, rest, width) == wrapped(text, first, rest, width)
