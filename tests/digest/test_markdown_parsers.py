"""The Markdown parsers the renderer picks between read every body as commonmark does,
and the words counted on the way are those counted apart."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from digest.edition.model import Edition
from digest.render.markdown import Parsed
from digest.render.plaintext import LinkList
from digest.render.renderer import ParsedEdition, Renderer, build_context

#: commonmark with every rule on, as the renderer parsed before it left some out.
COMMONMARK = MarkdownIt("commonmark", {"html": False})

#: Pieces of block Markdown, underlines among them, with every kind of line end.
_PIECES = st.sampled_from(
    ["word", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "=", "==", "-", "---", "> ", "- ", "* ",
     "1. ", "# ", "`", "```", "<b>", "</p>", "<!-- c -->", "[a](http://x)", "![i](http://y)", "[](http://z)", "*em*", "\\"]
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


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
@example("[](http://z)word")  # the link number and the word after it make one word
def test_text_and_words_from_one_walk(source: str) -> None:
    """The count taken while the text is written is the count of the unwrapped walk."""
    parsed = Parsed.body(source)
    text, words = parsed.text_and_words(LinkList())
    assert text == parsed.text(LinkList())
    assert words == parsed.words()


def test_context_counts_the_words_of_the_edition(renderer: Renderer, example: Edition) -> None:
    for edition in (example, replace(example, sections=example.sections * 5)):
        parsed = ParsedEdition.parse(edition)
        assert build_context(parsed, renderer.publication)["words"] == parsed.words()
