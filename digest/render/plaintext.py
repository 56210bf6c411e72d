"""Markdown tokens to readable plain text for the text twin of an email.

Not scraped from the HTML: the tokens the HTML is rendered from (one parse, see
``digest.render.markdown``) are walked in order. Links become ``text [n]`` with the
addresses listed by number, so a reader of the plain text can still follow every link.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it.token import Token

WIDTH = 72


@dataclass
class LinkList:
    """Links numbered in order of appearance across one email."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        self.urls.append(url)
        return len(self.urls)


def inline_text(children: list[Token] | None, links: LinkList | None) -> str:
    """Render an inline token's children as text; with ``links``, mark link numbers."""
    out: list[str] = []
    pending: list[str] = []
    for child in children or []:
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            pending.append(str(child.attrs.get("href", "")))
        elif kind == "link_close" and pending:
            url = pending.pop()
            if links is not None and url:
                out.append(f" [{links.number(url)}]")
        elif kind == "image":
            out.append(child.content or "image")
            src = str(child.attrs.get("src", ""))
            if links is not None and src:
                out.append(f" [{links.number(src)}]")
    return "".join(out)


def line_text(tokens: Sequence[Token], links: LinkList | None = None) -> str:
    """One line of inline Markdown (a headline, a dek), parsed inline, as text."""
    return " ".join(inline_text(tokens[0].children, links).split()) if tokens else ""


#: textwrap's whitespace: each of these becomes a space before a line is wrapped.
_TO_SPACE = str.maketrans("\t\n\x0b\x0c\r", "     ")
#: Whitespace other than a space (a no-break space): textwrap does not break there, but
#: drops a word made of nothing else. Text with any goes to textwrap.
_OTHER_SPACE = re.compile(r"[^\S ]")


def wrap_line(text: str, first: str, rest: str, width: int = WIDTH) -> list[str]:
    """``textwrap.wrap`` as the text twin calls it (no long words broken, none at hyphens).

    The same lines, made faster for the usual paragraph (single spaces between words,
    none at either end): a line is cut at the last space that fits, without textwrap's
    chunk by chunk loop. Anything else goes to textwrap itself.
    """
    text = text.expandtabs().translate(_TO_SPACE)
    if not text:
        return []
    if (
        len(first) >= width
        or len(rest) >= width
        or text[0] == " "
        or text[-1] == " "
        or "  " in text
        or _OTHER_SPACE.search(text)
    ):
        return textwrap.wrap(
            text,
            width=width,
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
    lines: list[str] = []
    indent, start, end = first, 0, len(text)
    while True:
        room = width - len(indent)
        if end - start <= room:
            lines.append(indent + text[start:])
            return lines
        cut = text.rfind(" ", start, start + room + 1)
        if cut < 0:  # a word longer than the line: alone on its line, not broken
            cut = text.find(" ", start)
            if cut < 0:
                lines.append(indent + text[start:])
                return lines
        lines.append(indent + text[start:cut])
        indent, start = rest, cut + 1


def _wrap(text: str, first: str, rest: str) -> list[str]:
    lines: list[str] = []
    for number, chunk in enumerate(text.split("\n")):
        lines.extend(wrap_line(chunk, first if number == 0 else rest, rest) or [first.rstrip()])
    return lines


def block_text(tokens: Sequence[Token], links: LinkList | None = None, wrap: bool = True) -> str:
    """A parsed Markdown body (paragraphs, quotes, lists, code) as wrapped plain text.

    Unwrapped (``wrap=False``) each paragraph is one line: the same words, for counting.
    """
    return block_text_and_words(tokens, links, wrap)[0]


def block_text_and_words(
    tokens: Sequence[Token], links: LinkList | None = None, wrap: bool = True
) -> tuple[str, int]:
    """:func:`block_text` and, from the same walk, the words of its unwrapped form.

    Those are the words of each line (its list number, ``1.``, counts, as in the text)
    without the link numbers: a paragraph with links is read again without them.
    """
    words = 0
    blocks: list[list[str]] = []
    quote = ""  # "> " per open blockquote
    lists: list[list[int]] = []  # per open list: [next number] or [-1] for bullets
    item_marker: str | None = None
    heading = False
    tight = last_tight = False  # paragraphs in a tight list stay on adjacent lines
    for token in tokens:
        kind = token.type
        if kind == "paragraph_open":
            tight = token.hidden
        elif kind == "heading_open":
            heading = True
        elif kind == "blockquote_open":
            quote += "> "
        elif kind == "blockquote_close":
            quote = quote[:-2]
        elif kind == "bullet_list_open":
            lists.append([-1])
        elif kind == "ordered_list_open":
            lists.append([int(str(token.attrs.get("start", 1)))])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            last_tight = False
        elif kind == "list_item_open":
            counter = lists[-1]
            if counter[0] < 0:
                item_marker = "- "
            else:
                item_marker = f"{counter[0]}. "
                counter[0] += 1
        elif kind in ("inline", "fence", "code_block", "hr"):
            indent = "   " * max(0, len(lists) - 1)
            rest = quote + indent + ("   " if lists else "")
            first = rest if item_marker is None else quote + indent + item_marker
            item_marker = None
            if kind == "inline":
                numbered = len(links.urls) if links is not None else 0
                text = inline_text(token.children, links)
                counted = text
                if links is not None and len(links.urls) > numbered:  # counted without [n]
                    counted = inline_text(token.children, None)
                if heading:
                    text, counted, heading = text.upper(), counted.upper(), False
                words += word_count(first) + word_count(counted)
                lines = _wrap(text, first, rest) if wrap else [first + text]
                if tight and last_tight and blocks:
                    blocks[-1].extend(lines)
                else:
                    blocks.append(lines)
                last_tight, tight = tight, False
                continue
            elif kind == "hr":
                blocks.append([quote + "-" * 20])
            else:
                code = token.content.rstrip("\n").split("\n")
                words += sum(word_count(line) for line in code)
                blocks.append([rest + "    " + line for line in code])
            last_tight = False
    return "\n\n".join("\n".join(block) for block in blocks), words


#: From a word's first letter or digit to the whitespace after it: one match per word.
_WORD = re.compile(r"[^\W_]\S*")


def word_count(text: str) -> int:
    """Words as a reader counts them: whitespace-separated runs with a letter or digit."""
    return len(_WORD.findall(text))
