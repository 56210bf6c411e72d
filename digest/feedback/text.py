"""The reader's words out of a message body: HTML to text, quotes and signature off.

Stripping is done by mail-parser-reply, which knows the quote headers mail
clients write in many languages ("On … wrote:", "Am … schrieb", Outlook's
"From: … Sent: …" block) and common signatures. Two things it leaves are taken
off here: ``>``-quoted lines between the reader's answers (inline replies) and
the lines of a quoted block it did not recognise as one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import nh3
from lxml import etree
from lxml import html as lxml_html
from mailparser_reply import EmailReplyParser

_SKIP = frozenset({"script", "style", "head", "title", "meta", "link", "template", "noscript"})
_BLOCK = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "hr",
        "address",
        "center",
    }
)
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
#: A signature delimiter ("-- "), which mail clients put before a signature.
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_QUOTE_MARK = re.compile(r"^>$", re.MULTILINE)
_RUNS_OF_SPACE = re.compile(r"[ \t\f\v\u00a0]{2,}")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body; ``blockquote`` content comes back ``>``-quoted."""
    if not markup.strip():
        return ""
    try:
        root = lxml_html.document_fromstring(markup)
    except (etree.ParserError, ValueError):
        return _SPACE.sub(" ", re.sub(r"<[^>]*>", " ", markup)).strip()
    return tidy(_render(root, 0))


def _render(element: etree._Element, depth: int) -> str:
    parts = [_SPACE.sub(" ", element.text or "")]
    for child in element:
        tail = _SPACE.sub(" ", child.tail or "")
        tag = child.tag.lower() if isinstance(child.tag, str) else ""
        if not tag or tag in _SKIP:
            parts.append(tail)
            continue
        if tag == "br":
            parts.append("\n" + tail)
            continue
        # Past a sane depth, plain text without the layout (no recursion limit to hit).
        inner = (
            _render(child, depth + 1)
            if depth < 200
            else _SPACE.sub(" ", " ".join(child.itertext()))
        )
        if tag == "blockquote":
            quoted = "\n".join("> " + line for line in tidy(inner).split("\n"))
            parts.append(f"\n{quoted}\n")
        elif tag in _BLOCK:
            parts.append(f"\n{inner}\n")
        elif tag in ("td", "th"):
            parts.append(inner + " ")
        else:
            parts.append(inner)
        parts.append(tail)
    return "".join(parts)


def tidy(text: str) -> str:
    """Lines without trailing space, at most one blank line in a row, no blank ends."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@lru_cache(maxsize=8)
def _parser(languages: tuple[str, ...]) -> EmailReplyParser:
    return EmailReplyParser(languages=list(languages))


def strip_reply(text: str, languages: tuple[str, ...] = ("en",)) -> str:
    """The reader's own words: no quoted original, no attribution line, no signature.

    First the newest fragment is found: the text before the first quote header
    ("On … wrote:", Outlook's "From: … Sent: …"), or after it when the reader
    wrote below. Within it, words between ``>``-quoted passages (an inline reply)
    are separate blocks, each stripped of its own signature, so a "Sent from my
    iPhone" in the first block does not take the answers below it along.
    """
    if not text.strip():
        return ""
    # Each run of quoted lines becomes one ">" line: the quote's place is kept, and
    # the library's many-language patterns never scan the (often long) original.
    lines: list[str] = []
    for line in text.split("\n"):
        if not line.lstrip().startswith(">"):
            lines.append(line)
        elif not lines or lines[-1] != ">":
            lines.append(">")
    # The library's patterns can take quadratic time on a long line, so it sees
    # single spaces, lines broken at a space after 500 characters, and at most 32 KB
    # (the full text keeps everything).
    collapsed = "\n".join(_short_lines(_RUNS_OF_SPACE.sub(" ", "\n".join(lines))))[:32768]
    replies = _parser(languages).read(collapsed).replies
    newest = replies[0].full_body if replies else collapsed
    parts = [_newest(block, languages) for block in _QUOTE_MARK.split(newest)]
    return tidy("\n\n".join(part for part in parts if part))


def _short_lines(text: str, width: int = 1000) -> Iterator[str]:
    """Lines of at most ``width`` characters, broken at the last space that allows."""
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width)
            if cut < 0:  # no space (a URL, a blob): cut anyway
                yield line[:width]
                line = line[width:]
            else:
                yield line[:cut]
                line = line[cut + 1 :]
        yield line


def _newest(text: str, languages: tuple[str, ...]) -> str:
    if not text.strip():
        return ""
    replies = _parser(languages).read(text).replies
    newest = replies[0].body if replies else text
    # A "-- " signature delimiter that the library did not take as one.
    found = _SIGNATURE.search(newest)
    if found is not None:
        newest = newest[: found.start()]
    return tidy(newest)


def safe_html(markup: str) -> str:
    """HTML from a message made safe to show: no scripts, no remote images, no styles.

    nh3 keeps only harmless tags and attributes; ``img`` is not among those kept,
    so nothing in a message makes the viewer fetch anything.
    """
    allowed = set(nh3.ALLOWED_TAGS) - {"img"}
    return nh3.clean(markup, tags=allowed, link_rel="noopener noreferrer nofollow")
