"""An edition's Markdown, each piece parsed once: HTML, plain text and word count from one token stream.

markdown-it-py parses a piece of Markdown to tokens; its HTML renderer, the plain-text
walker (``digest.render.plaintext``) and the word count all read those same tokens, so a
section costs one parse however many outputs it feeds. Raw HTML in Markdown is shown as
text, never passed through: ``html`` is off, and so are the rules that look for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from digest.render.plaintext import (
    LinkList,
    block_text,
    block_text_and_words,
    line_text,
    word_count,
)

#: With ``html`` off the raw-HTML rules match nothing; they are left out, not asked.
PARSER = MarkdownIt("commonmark", {"html": False}).disable(["html_block", "html_inline"])
#: The same without setext headings (a line underlined with ``===`` or ``---``), for a
#: body with no line that could underline one: that rule then finds nothing either,
#: and it costs a tenth of a parse, reading every paragraph twice.
_NO_SETEXT = MarkdownIt("commonmark", {"html": False}).disable(
    ["html_block", "html_inline", "lheading"]
)
#: A line ending in ``=`` or ``-`` (then spaces or tabs): every setext underline does.
_UNDERLINE = re.compile(r"[=-][ \t]*(?:[\r\n]|\Z)")


@dataclass(frozen=True)
class Parsed:
    """One piece of Markdown after its only parse: a block (a body) or a line (a headline)."""

    tokens: Sequence[Token]
    block: bool

    @classmethod
    def body(cls, source: str) -> Parsed:
        """A section body: paragraphs, lists, quotes, code."""
        parser = PARSER if _UNDERLINE.search(source) else _NO_SETEXT
        return cls(parser.parse(source), block=True)

    @classmethod
    def line(cls, source: str) -> Parsed:
        """A headline or the dek: inline Markdown only."""
        return cls(PARSER.parseInline(source), block=False)

    def html(self) -> Markup:
        """The HTML markdown-it renders, safe to hand a template as is."""
        return Markup(PARSER.renderer.render(self.tokens, PARSER.options, {}))

    def text(self, links: LinkList | None = None) -> str:
        """Plain text; with ``links``, each link marked ``[n]`` and its address numbered there."""
        if self.block:
            return block_text(self.tokens, links)
        return line_text(self.tokens, links)

    def text_and_words(self, links: LinkList | None = None) -> tuple[str, int]:
        """:meth:`text` and :meth:`words` from one walk of the tokens."""
        if self.block:
            return block_text_and_words(self.tokens, links)
        text = line_text(self.tokens, links)
        return text, word_count(text if links is None else line_text(self.tokens))

    def words(self) -> int:
        """Words a reader reads here: those of the text, without link numbers or wrapping."""
        if self.block:
            return word_count(block_text(self.tokens, None, wrap=False))
        return word_count(line_text(self.tokens))


def markdown_inline(source: str, links: LinkList | None = None) -> str:
    """One line of inline Markdown (a headline, a dek) as text."""
    return Parsed.line(source).text(links)


def markdown_block(source: str, links: LinkList | None = None) -> str:
    """A Markdown body as wrapped plain text."""
    return Parsed.body(source).text(links)
