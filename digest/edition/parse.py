"""Parse and validate an edition file: Markdown with YAML front matter.

Pure: takes the file's text (and its name, for messages) and returns an
:class:`~digest.edition.model.Edition`, or raises :class:`~digest.errors.EditionError`
listing every problem found, each with the line where it can be known.

Front matter is read from YAML *nodes*, not loaded values, so that scalars keep
their text exactly as written (YAML 1.1 would turn ``title: No`` into ``False``)
and every key keeps its line number for error messages.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from markdown_it import MarkdownIt

from digest.edition.dates import date_from_filename as date_from_filename
from digest.edition.dates import parse_date as parse_date
from digest.edition.model import Edition, Read, Section, default_title
from digest.errors import EditionError, Problem

EDITION_KEYS = ("date", "title", "subject", "summary", "reads")
READ_KEYS = ("title", "url", "source", "note")
_FENCE = "---"


@dataclass
class _Collector:
    """Gathers problems so an editor sees all of them in one run."""

    path: str
    problems: list[Problem]

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _split_front_matter(text: str, out: _Collector) -> tuple[str, int, str, int] | None:
    """Return (front matter, its first line, body, the body's first line)."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != _FENCE:
        out.add(
            1,
            "the file must start with YAML front matter: a line '---', at least "
            "'date: YYYY-MM-DD', and a closing '---'",
        )
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == _FENCE:
            front = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :])
            return front, 2, body, index + 2
    out.add(1, "the front matter opened by '---' on line 1 is never closed by a '---' line")
    return None


def _scalar(node: yaml.Node, what: str, base: int, out: _Collector) -> str | None:
    line = base + node.start_mark.line
    if not isinstance(node, yaml.ScalarNode):
        out.add(line, f"{what} must be a single line of text, not a list or a mapping")
        return None
    return str(node.value).strip()


def _check_url(url: str, line: int, out: _Collector) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        out.add(line, f"read URL '{url}' must be an absolute http:// or https:// address")
    elif any(ch.isspace() or ord(ch) < 32 for ch in url):
        out.add(line, f"read URL '{url}' contains spaces or control characters")


def _parse_read(node: yaml.Node, number: int, base: int, out: _Collector) -> Read | None:
    line = base + node.start_mark.line
    if not isinstance(node, yaml.MappingNode):
        out.add(line, f"read #{number} must be a mapping with 'title' and 'url'")
        return None
    values: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        key_line = base + key_node.start_mark.line
        if key not in READ_KEYS:
            allowed = ", ".join(READ_KEYS)
            out.add(
                key_line,
                f"unknown key '{key}' in read #{number}{_suggest(key, READ_KEYS)}; "
                f"allowed: {allowed}",
            )
            continue
        value = _scalar(value_node, f"'{key}' of read #{number}", base, out)
        if value:
            values[key] = value
    if "url" not in values:
        out.add(line, f"read #{number} has no 'url': add the link to the piece")
    else:
        _check_url(values["url"], line, out)
    if "title" not in values:
        out.add(line, f"read #{number} has no 'title': add the headline of the piece")
    if "url" not in values or "title" not in values:
        return None
    return Read(
        title=values["title"],
        url=values["url"],
        source=values.get("source"),
        note=values.get("note"),
    )


def _front_matter(front: str, base: int, path: str, out: _Collector) -> dict[str, yaml.Node] | None:
    try:
        root = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = base + mark.line if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        out.add(line, f"invalid YAML in the front matter: {problem}")
        return None
    if root is None:
        out.add(base, "the front matter is empty: it needs at least 'date: YYYY-MM-DD'")
        return None
    if not isinstance(root, yaml.MappingNode):
        out.add(base, "the front matter must be 'key: value' lines")
        return None
    nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in root.value:
        key = str(key_node.value)
        key_line = base + key_node.start_mark.line
        if key not in EDITION_KEYS:
            out.add(
                key_line,
                f"unknown front-matter key '{key}'{_suggest(key, EDITION_KEYS)}; "
                f"allowed: {', '.join(EDITION_KEYS)}",
            )
        elif key in nodes:
            out.add(key_line, f"front-matter key '{key}' is given twice")
        else:
            nodes[key] = value_node
    return nodes


def _edition_date(
    nodes: dict[str, yaml.Node], base: int, path: str, out: _Collector
) -> date | None:
    node = nodes.get("date")
    if node is None:
        out.add(base, "missing 'date: YYYY-MM-DD' in the front matter")
        return None
    line = base + node.start_mark.line
    text = _scalar(node, "'date'", base, out)
    if text is None:
        return None
    day = parse_date(text)
    if day is None:
        out.add(line, f"date '{text}' is not a valid date; write it as YYYY-MM-DD, e.g. 2017-11-02")
        return None
    named = date_from_filename(path)
    if named is not None and named != day:
        out.add(
            line,
            f"date {day.isoformat()} disagrees with the file name {Path(path).name}; "
            "rename the file or fix the date",
        )
    return day


def _sections(body: str, first_line: int, out: _Collector) -> list[Section]:
    md = MarkdownIt("commonmark", {"html": False})
    tokens = md.parse(body)
    lines = body.split("\n")
    heads: list[tuple[int, int, str]] = []  # (start, end, headline) in body lines
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        start, end = token.map
        text = tokens[index + 1].content.strip()
        if token.tag == "h1":
            out.add(
                first_line + start,
                f"'# {text}' is a level-1 heading; sections start with '## '",
            )
        elif token.tag == "h2" and token.markup == "##":
            if not text:
                out.add(first_line + start, "a '## ' section heading with no headline text")
            heads.append((start, end, text))
    leading_end = heads[0][0] if heads else len(lines)
    for offset, line in enumerate(lines[:leading_end]):
        if line.strip():
            if heads:
                out.add(
                    first_line + offset,
                    "text before the first '## ' heading would be lost; move it under a "
                    "heading or into 'summary:' in the front matter",
                )
            break
    if not heads:
        out.add(
            first_line,
            "the edition has no sections: add at least one '## Headline' line "
            "followed by its paragraphs",
        )
        return []
    sections = []
    for number, (start, end, headline) in enumerate(heads):
        stop = heads[number + 1][0] if number + 1 < len(heads) else len(lines)
        text = "\n".join(lines[end:stop]).strip("\n")
        sections.append(Section(headline=headline, body=text, line=first_line + start))
    return sections


def normalised(text: str) -> str:
    """The text as it is parsed: no byte-order mark, every line ending a ``\\n``."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def parse_edition(text: str, path: str | Path = "<edition>") -> Edition:
    """Parse an edition file's text; raise ``EditionError`` with every problem."""
    name = str(path)
    out = _Collector(name, [])
    text = normalised(text)
    split = _split_front_matter(text, out)
    if split is None:
        raise EditionError(out.problems)
    front, base, body, body_line = split
    nodes = _front_matter(front, base, name, out)
    sections = _sections(body, body_line, out)
    if nodes is None:
        raise EditionError(out.problems)
    day = _edition_date(nodes, base, name, out)
    strings: dict[str, str] = {}
    for key in ("title", "subject", "summary"):
        if key in nodes:
            value = _scalar(nodes[key], f"'{key}'", base, out)
            if value == "" and key != "summary":
                out.add(
                    base + nodes[key].start_mark.line, f"'{key}' is empty; remove it or fill it"
                )
            elif value:
                strings[key] = value
    reads: list[Read] = []
    if "reads" in nodes:
        node = nodes["reads"]
        if isinstance(node, yaml.SequenceNode):
            for number, item in enumerate(node.value, start=1):
                read = _parse_read(item, number, base, out)
                if read is not None:
                    reads.append(read)
        elif not (isinstance(node, yaml.ScalarNode) and node.value == ""):
            out.add(base + node.start_mark.line, "'reads' must be a list of '- title: … url: …'")
    if out.problems or day is None:
        raise EditionError(out.problems)
    title = strings.get("title") or default_title(day)
    return Edition(
        date=day,
        title=title,
        subject=strings.get("subject") or title,
        summary=strings.get("summary", ""),
        sections=tuple(sections),
        reads=tuple(reads),
        source=name,
    )


def load_edition(path: Path) -> Edition:
    """Read and parse an edition file; unreadable bytes are an ``EditionError`` too."""
    return parse_edition(read_edition_text(path), path)


def read_edition_text(path: Path) -> str:
    """An edition file's text, read once: what is parsed and hashed comes from these bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EditionError.single(path, None, f"cannot read the file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise EditionError.single(
            path, line, "the file is not valid UTF-8; save it with UTF-8 encoding"
        ) from exc
    return text
