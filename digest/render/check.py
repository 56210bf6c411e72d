"""What ``digest check`` reports: figures and warnings for an edition that parses.

Errors stop an edition (``EditionError``); warnings are things an editor likely
wants to fix but that do not stop it going out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.edition.model import Edition, Read
from digest.edition.parse import date_from_filename
from digest.edition.urls import normalise_url
from digest.errors import Problem, in_line_order
from digest.render.markdown import PARSER
from digest.render.renderer import RenderedEdition

#: Inboxes cut subjects off at roughly this many characters.
SUBJECT_SHOWN = 70
#: Warn when the HTML uses more than this share of the size limit.
SIZE_WARNING_SHARE = 0.9


@dataclass(frozen=True)
class CheckReport:
    edition: Edition
    rendered: RenderedEdition
    limit: int
    warnings: tuple[Problem, ...]
    origins: tuple[str, ...] = ()  # beside each read: "file", "queue" or "feed URL"

    def reads_with_origin(self) -> list[tuple[Read, str]]:
        origins = self.origins or ("file",) * len(self.edition.reads)
        return list(zip(self.edition.reads, origins, strict=True))

    def origin_summary(self) -> str:
        """E.g. "file 1, queue 2, feed 1": how many reads came from where."""
        kinds = Counter(origin.split(" ", 1)[0] for _, origin in self.reads_with_origin())
        return ", ".join(
            f"{kind} {kinds[kind]}" for kind in ("file", "queue", "feed") if kinds[kind]
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.edition.source,
            "date": self.edition.date.isoformat(),
            "title": self.edition.title,
            "subject": self.rendered.subject,
            "sections": len(self.edition.sections),
            "reads": len(self.edition.reads),
            "reads_list": [
                {"title": read.title, "url": read.url, "from": origin}
                for read, origin in self.reads_with_origin()
            ],
            "words": self.rendered.words,
            "reading_minutes": self.rendered.minutes,
            "html_bytes": self.rendered.html_bytes,
            "html_limit_bytes": self.limit,
            "text_bytes": self.rendered.text_bytes,
            "warnings": [{"line": w.line, "message": w.message} for w in self.warnings],
        }


def _section_links(body: str) -> list[str]:
    links = []
    for token in PARSER.parse(body):
        for child in token.children or []:
            if child.type == "link_open":
                links.append(str(child.attrs.get("href", "")))
    return links


def edition_warnings(edition: Edition, rendered: RenderedEdition, limit: int) -> list[Problem]:
    """Everything worth an editor's second look, in line order (whole-file ones first)."""
    path = edition.source
    found: list[Problem] = []
    named = date_from_filename(path)
    if named is None and not path.startswith("<"):
        found.append(
            Problem(path, None, "file name is not YYYY-MM-DD.md; the scheduler won't find it")
        )
    if not edition.summary:
        found.append(
            Problem(path, None, "no 'summary:' (the dek); the email opens with no preview")
        )
    if len(rendered.subject) > SUBJECT_SHOWN:
        found.append(
            Problem(
                path,
                None,
                f"subject is {len(rendered.subject)} characters; inboxes show about {SUBJECT_SHOWN}",
            )
        )
    for section in edition.sections:
        if not section.body.strip():
            found.append(Problem(path, section.line, f"section '{section.headline}' is empty"))
        for link in _section_links(section.body):
            scheme = urlsplit(link).scheme.lower()
            if scheme not in ("http", "https", "mailto"):
                found.append(
                    Problem(
                        path,
                        section.line,
                        f"link '{link}' in section '{section.headline}' is not an absolute "
                        "http(s) or mailto address; it will not work in an email",
                    )
                )
    seen: dict[str, int] = {}
    for number, read in enumerate(edition.reads, start=1):
        key = normalise_url(read.url)
        if key in seen:
            found.append(
                Problem(
                    path,
                    None,
                    f"read #{number} links the same page as read #{seen[key]}: {read.url}",
                )
            )
        else:
            seen[key] = number
    if rendered.html_bytes > limit * SIZE_WARNING_SHARE:
        found.append(
            Problem(
                path,
                None,
                f"HTML is {rendered.html_bytes:,} bytes, {rendered.html_bytes / limit:.0%} of the "
                f"{limit:,}-byte limit",
            )
        )
    return in_line_order(found)
