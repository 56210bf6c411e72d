"""The Markdown parsers the renderer picks between read every body as commonmark does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from digest.render.markdown import Parsed
from digest.render.plaintext import LinkList

#: commonmark with every rule on, as the renderer parsed before it left some out.
COMMONMARK = MarkdownIt("commonmark", {"html": False})

#: Pieces of block Markdown, underlines among them, with every kind of line end.
_PIECES = st.sampled_from(
    ["word", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "=", "==", "-", "---", "> ", "- ", "* ",
     "1. ", "# ", "`", "```", "<b>", "</p>", "<!-- c -->", "[a](http://x)", "*em*", "\\"]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_same_html_and_text_as_commonmark(source: str) -> None:
    parsed = Parsed.body(source)
    assert parsed.html() == COMMONMARK.render(source)
    assert parsed.text(LinkList()) == Parsed(COMMONMARK.parse(source), block=True).text(LinkList())


def test_setext_headings_still_found() -> None:
    for source in ("Title\n===", "Title\n---  \nmore", "> Quote\n> ---\r\n", "- Item\n  ===\r"):
        assert Parsed.body(source).html() == COMMONMARK.render(source)
        assert "<h" in COMMONMARK.render(source)
