"""Render an edition once: Jinja2 → MJML → mjml-python → premailer → HTML, plus a text twin.

The output keeps per-recipient ``[[placeholders]]`` (see ``digest.render.placeholders``)
for the sending step to fill; only the templates' ``recipient.*`` become one, never
content, because the guard runs on the finished output. Each stage is a public
function so that the benchmark can time them apart; :func:`render_edition` runs
them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import jinja2
import mjml

from digest.edition.model import Edition, ap_date, minutes_phrase, reading_minutes
from digest.errors import EmailTooLargeError, TemplateError
from digest.render import placeholders
from digest.render.inlining import inline_css
from digest.render.markdown import Parsed
from digest.render.plaintext import LinkList, word_count
from digest.render.templating import make_environment, render_template
from digest.settings import Publication, Settings

HTML_TEMPLATE = "email/edition.mjml.j2"
TEXT_TEMPLATE = "email/edition.txt.j2"


@dataclass(frozen=True)
class RenderedEdition:
    """What one edition looks like as email, placeholders still open."""

    subject: str
    html: str
    text: str
    words: int
    minutes: int

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def text_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


@dataclass(frozen=True)
class Renderer:
    """The configured pipeline; build it once and render many editions."""

    publication: Publication
    env: jinja2.Environment
    max_html_bytes: int = 100_000

    @classmethod
    def create(
        cls,
        publication: Publication,
        templates_dir: Path | None = None,
        max_html_bytes: int = 100_000,
    ) -> Renderer:
        return cls(publication, make_environment(templates_dir), max_html_bytes)

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        return cls.create(
            settings.publication, settings.render.templates_dir, settings.render.max_html_bytes
        )


@dataclass(frozen=True)
class ParsedEdition:
    """An edition with its Markdown parsed, each piece once, for every output to share."""

    edition: Edition
    summary: Parsed
    sections: tuple[tuple[Parsed, Parsed], ...]  # (headline, body) per section

    @classmethod
    def parse(cls, edition: Edition) -> ParsedEdition:
        return cls(
            edition,
            Parsed.line(edition.summary),
            tuple((Parsed.line(s.headline), Parsed.body(s.body)) for s in edition.sections),
        )

    def words(self) -> int:
        """Words a reader reads: title, dek, every section and every read."""
        total = self.words_outside_sections()
        return total + sum(headline.words() + body.words() for headline, body in self.sections)

    def words_outside_sections(self) -> int:
        """The title's, the dek's and the reads' words."""
        edition = self.edition
        total = word_count(edition.title) + self.summary.words()
        for read in edition.reads:
            total += sum(word_count(p) for p in (read.title, read.source, read.note) if p)
        return total


def build_context(
    parsed: ParsedEdition,
    publication: Publication,
    fields: placeholders.TemplateFields | None = None,
) -> dict[str, object]:
    """The values both templates see; HTML pieces are ``Markup``, text pieces are ``str``.

    Content goes in as written: placeholders it spells are neutralised in the
    finished output (``fields.finish``), where no Markdown escape is left to undo it.
    The word count (``words``, as :meth:`ParsedEdition.words` counts) comes from the
    same walk of each section as its text.
    """
    edition = parsed.edition
    fields = fields or placeholders.TemplateFields.draw(placeholders.EDITION_FIELDS)
    words = parsed.words_outside_sections()
    links = LinkList()
    sections = []
    for headline, body in parsed.sections:
        start = len(links.urls)
        headline_text, headline_words = headline.text_and_words()
        body_text, body_words = body.text_and_words(links)
        words += headline_words + body_words
        sections.append(
            {
                "headline_html": headline.html(),
                "body_html": body.html(),
                "headline_text": headline_text,
                "body_text": body_text,
                "links": list(enumerate(links.urls[start:], start=start + 1)),
            }
        )
    reads = [
        {
            "title": read.title,
            "url": placeholders.guard_url(read.url),  # still a working link
            "source": read.source or "",
            "note": read.note or "",
        }
        for read in edition.reads
    ]
    summary_text = parsed.summary.text()
    minutes = reading_minutes(words)
    return {
        "publication": publication,
        "edition": edition,
        "title": edition.title,
        "subject": edition.subject,
        "summary_html": parsed.summary.html(),
        "summary_text": summary_text,
        "published": ap_date(edition.date),
        "read_time": minutes_phrase(minutes),
        "words": words,
        "minutes": minutes,
        "sections": sections,
        "reads": reads,
        "recipient": fields.tokens(),
    }


def render_mjml_source(
    renderer: Renderer, context: dict[str, object], template: str = HTML_TEMPLATE
) -> str:
    """Stage 1: Jinja2 fills the MJML template."""
    return render_template(renderer.env, template, context)


#: Characters XML (and so MJML) refuses and no email should carry: C0 controls but tab,
#: newline and carriage return; DEL. Content from a feed or a pasted text may hold them.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(text: str) -> str:
    """``text`` without the control characters an email can't carry (see ``_UNWRITABLE``)."""
    return _UNWRITABLE.sub("", text)


def compile_mjml(source: str, template: str = HTML_TEMPLATE) -> str:
    """Stage 2: mjml-python turns MJML into table-based, responsive HTML.

    Control characters from content are dropped first: the MJML parser refuses them,
    and one stray byte in a feed entry must not stop the edition.
    """
    try:
        return mjml.mjml2html(without_controls(source), disable_comments=True, fonts={})
    except Exception as exc:  # mjml-python raises plain exceptions with the parser's message
        raise TemplateError(f"{template}: MJML could not be compiled: {exc}") from exc


def render_text(
    renderer: Renderer, context: dict[str, object], template: str = TEXT_TEMPLATE
) -> str:
    """Stage 4: the plain-text twin, from its own template (control characters dropped)."""
    return without_controls(render_template(renderer.env, template, context))


def render_edition(
    renderer: Renderer, edition: Edition, *, allow_large: bool = False
) -> RenderedEdition:
    """Render ``edition`` to HTML and text; refuse HTML over the size limit unless allowed."""
    fields = placeholders.TemplateFields.draw(placeholders.EDITION_FIELDS)
    context = build_context(ParsedEdition.parse(edition), renderer.publication, fields)
    words = cast(int, context["words"])
    html = fields.finish(inline_css(compile_mjml(render_mjml_source(renderer, context))))
    text = fields.finish(render_text(renderer, context))
    rendered = RenderedEdition(
        subject=placeholders.neutralise(edition.subject),
        html=html,
        text=text,
        words=words,
        minutes=reading_minutes(words),
    )
    _check_placeholders(html, HTML_TEMPLATE)
    _check_placeholders(text, TEXT_TEMPLATE)
    if not allow_large and rendered.html_bytes > renderer.max_html_bytes:
        raise EmailTooLargeError(rendered.html_bytes, renderer.max_html_bytes)
    return rendered


@dataclass(frozen=True)
class RenderedEmail:
    """A service email (not an edition) as HTML and text, placeholders still open."""

    subject: str
    html: str
    text: str


def render_email(
    renderer: Renderer, name: str, subject: str, context: dict[str, object], required: str
) -> RenderedEmail:
    """Render ``templates/email/NAME.mjml.j2`` and ``NAME.txt.j2`` through the same stages.

    ``required`` is the placeholder the email is for (its link); a template
    without it is refused.
    """
    fields = placeholders.TemplateFields.draw()
    full = {"publication": renderer.publication, "recipient": fields.tokens(), **context}
    html_template, text_template = f"email/{name}.mjml.j2", f"email/{name}.txt.j2"
    html = fields.finish(
        inline_css(compile_mjml(render_mjml_source(renderer, full, html_template), html_template))
    )
    text = fields.finish(render_text(renderer, full, text_template))
    for body, template in ((html, html_template), (text, text_template)):
        if required not in _fields(body, template):
            raise TemplateError(f"{template} must contain {{{{ recipient.{required} }}}}")
    return RenderedEmail(subject, html, text)


def _fields(body: str, template: str) -> tuple[str, ...]:
    try:
        return placeholders.Personalisable.compile(body).fields
    except KeyError as exc:
        raise TemplateError(f"{template}: {exc.args[0]}") from exc


def _check_placeholders(body: str, template: str) -> None:
    """Every field must be known, and every email must carry its unsubscribe link."""
    if "unsubscribe_url" not in _fields(body, template):
        raise TemplateError(
            f"{template} has no unsubscribe link: add {{{{ recipient.unsubscribe_url }}}}; "
            "every email must let its reader leave in one click"
        )


def preview_values(publication: Publication) -> dict[str, str]:
    """Stand-ins for per-recipient values in previews, so every link in them works."""
    return {
        "unsubscribe_url": publication.site_url.rstrip("/") + "/unsubscribe/preview",
        "recipient_email": "reader@example.org",
        "confirm_url": publication.site_url.rstrip("/") + "/confirm/preview",
    }


def personalise(
    rendered: RenderedEdition | RenderedEmail, values: dict[str, str]
) -> tuple[str, str]:
    """(html, text) for one recipient; the values are escaped for HTML."""
    html = placeholders.Personalisable.compile(rendered.html)
    text = placeholders.Personalisable.compile(rendered.text)
    return html.fill(values, placeholders.escape_html), text.fill(values)
