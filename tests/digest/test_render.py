from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from digest.edition.model import Edition, Read
from digest.edition.parse import parse_edition
from digest.errors import EmailTooLargeError, TemplateError
from digest.render.markdown import Parsed, markdown_block, markdown_inline
from digest.render.plaintext import LinkList, word_count
from digest.render.renderer import RenderedEdition, Renderer, personalise, render_edition
from digest.render.templating import default_templates_dir
from digest.settings import Publication
from tests.helpers import edition_text


def visible(html: str) -> str:
    """HTML with tags removed and whitespace folded, to look for prose in it."""
    import html as html_module

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def squeeze(text: str) -> str:
    """Text without any whitespace: tags removed from HTML leave gaps around punctuation."""
    return "".join(text.split())


def test_every_headline_paragraph_and_read_in_both_outputs(
    example: Edition, example_rendered: RenderedEdition
) -> None:
    """Nothing an editor wrote is missing from the HTML or from the text twin."""
    html = visible(example_rendered.html)
    unquoted = re.sub(r"(?m)^> ", "", example_rendered.text)
    text = " ".join(re.sub(r" \[\d+\]", "", unquoted).split())  # link numbers aside
    for section in example.sections:
        headline = markdown_inline(section.headline)
        assert headline in html
        assert headline in text
        for paragraph in markdown_block(section.body).split("\n\n"):
            plain = " ".join(re.sub(r"(?m)^> ", "", paragraph).split())
            assert plain in text
            assert squeeze(plain) in squeeze(html)
    for read in example.reads:
        assert read.title in html and read.title in text
        assert read.url in example_rendered.html and read.url in text
        for extra in (read.source, read.note):
            if extra:
                assert extra in html
                assert " ".join(extra.split()) in text


def test_title_dek_date_and_read_time(example_rendered: RenderedEdition) -> None:
    """The dated title, the dek and the publication line appear as readers expect."""
    html = visible(example_rendered.html)
    line = "Published on Nov. 2, 2017 · Read time approx. 3 minutes"
    assert "Executive Summary for November 2nd" in html
    assert line in html
    assert line in example_rendered.text
    assert "We review the key developments" in html
    assert example_rendered.minutes == 3
    assert "<title>Executive Summary for November 2nd</title>" in example_rendered.html


def test_calls_to_action_and_footer(
    example_rendered: RenderedEdition, publication: Publication
) -> None:
    """Suggest-a-story mailto, share link, unsubscribe, postal and contact addresses."""
    html = example_rendered.html
    assert f'href="mailto:{publication.contact_email}?subject=Story%20suggestion"' in html
    assert f'href="{publication.share_link}"' in html
    assert 'href="[[unsubscribe_url]]"' in html
    assert publication.postal_address in visible(html)
    assert publication.contact_email in visible(html)
    for part in (
        "SUGGEST A STORY",
        "SHARE YOUR STORY",
        "[[unsubscribe_url]]",
        "[[recipient_email]]",
    ):
        assert part in example_rendered.text
    assert publication.postal_address in example_rendered.text


def test_text_twin_numbers_and_lists_links(example_rendered: RenderedEdition) -> None:
    """Links in the text twin are marked [n] and listed with their address."""
    text = example_rendered.text
    assert "regional conciliation office [1]" in text
    assert "[1] https://conciliation.example.org/harbour-2017" in text
    assert "<" not in text.replace("<edition>", "")


def test_editor_html_is_shown_as_text(renderer: Renderer) -> None:
    """<script> written by an editor arrives as visible text in HTML, never as markup."""
    body = "## Head <b>bold</b>\n\nA <script>alert('x')</script> here & there.\n"
    front = 'date: 2017-11-02\ntitle: "<img src=x onerror=alert(1)>"\nreads:\n  - title: "<i>r</i>"\n    url: https://e.org/?a=1&b=2\n'
    rendered = render_edition(renderer, parse_edition(edition_text(body, front), "x.md"))
    html = rendered.html
    assert "<script>" not in html
    assert (
        "&lt;script&gt;alert('x')&lt;/script&gt;" in html
        or "&lt;script&gt;alert(&#39;x&#39;)" in html
    )
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<i>r</i>" not in html
    assert "https://e.org/?a=1&amp;b=2" in html
    assert "A <script>alert('x')</script> here & there." in rendered.text


def test_markdown_links_with_scripts_are_not_links(renderer: Renderer) -> None:
    """A javascript: link in Markdown is not turned into a link."""
    body = "## H\n\n[click](javascript:alert(1)) and [ok](https://example.org/ok)\n"
    html = render_edition(renderer, parse_edition(edition_text(body), "x.md")).html
    assert 'href="javascript' not in html
    assert 'href="https://example.org/ok"' in html


def test_editor_text_cannot_form_placeholders(renderer: Renderer) -> None:
    """'[[unsubscribe_url]]' typed by an editor is never filled per recipient."""
    body = "## H\n\nMy link: [[unsubscribe_url]] and [[recipient_email]].\n"
    rendered = render_edition(renderer, parse_edition(edition_text(body), "x.md"))
    html, text = personalise(
        rendered, {"unsubscribe_url": "https://u/SECRET", "recipient_email": "r@e.org"}
    )
    assert html.count("https://u/SECRET") == 1
    assert text.count("https://u/SECRET") == 1
    assert "[\u2060[unsubscribe_url]]" in text


def test_personalise_escapes_values_for_html(example_rendered: RenderedEdition) -> None:
    """Recipient values are escaped in HTML and kept as they are in text."""
    values = {
        "unsubscribe_url": "https://n.example/u?t=a&s=b",
        "recipient_email": "o'brien@example.org",
    }
    html, text = personalise(example_rendered, values)
    assert 'href="https://n.example/u?t=a&amp;s=b"' in html
    assert "o&#39;brien@example.org" in html
    assert "https://n.example/u?t=a&s=b" in text
    assert "[[" not in html and "[[" not in text


def test_mobile_css_survives_inlining(example_rendered: RenderedEdition) -> None:
    """premailer keeps the @media rules, their !important and the doctype."""
    html = example_rendered.html
    assert html.startswith("<!DOCTYPE html>")
    assert re.search(
        r"@media only screen and \(min-width:480px\) \{ \.mj-column-per-100 \{ width:100% !important",
        html,
    )
    assert ".title h1 { font-size: 25px !important; }" in html
    assert "<link" not in html  # nothing loaded from the network
    assert 'style="' in html  # CSS was inlined


def test_size_limit_refuses_and_can_be_overridden(renderer: Renderer, example: Edition) -> None:
    """HTML past the limit is refused with a clear error unless allowed."""
    small = replace(renderer, max_html_bytes=10_000)
    with pytest.raises(EmailTooLargeError) as caught:
        render_edition(small, example)
    assert "over the limit of 10,000 bytes" in str(caught.value)
    assert "Gmail" in str(caught.value)
    assert render_edition(small, example, allow_large=True).html_bytes > 10_000


def test_twenty_sections_fit_under_the_default_limit(renderer: Renderer, example: Edition) -> None:
    """A long edition of 20 sections stays below Gmail's clipping size."""
    long = replace(example, sections=tuple(example.sections[i % 4] for i in range(20)))
    rendered = render_edition(renderer, long)
    assert rendered.html_bytes < 100_000
    assert rendered.text.count("\n-----") >= 20


def test_no_reads_no_reads_block(renderer: Renderer, example: Edition) -> None:
    """An edition without reads has no empty 'Recommended Reads' heading."""
    rendered = render_edition(renderer, replace(example, reads=()))
    assert "Recommended Reads" not in rendered.html
    assert "RECOMMENDED READS" not in rendered.text


def test_publication_settings_reach_the_email(example: Edition) -> None:
    """Name, colour, logo and addresses come from settings."""
    pub = Publication(
        name="The Evening Ledger",
        brand_color="#aa3300",
        logo_url="https://ledger.example.com/logo.png",
        share_url="https://ledger.example.com/share",
        contact_email="tips@ledger.example.com",
    )
    rendered = render_edition(
        Renderer.create(pub), replace(example, reads=(Read("R", "https://r.example"),))
    )
    assert "The Evening Ledger" in rendered.html
    assert "#aa3300" in rendered.html
    assert 'src="https://ledger.example.com/logo.png"' in rendered.html
    assert 'href="https://ledger.example.com/share"' in rendered.html
    assert "mailto:tips@ledger.example.com?subject=Story%20suggestion" in rendered.html
    assert "THE EVENING LEDGER" in rendered.text


def test_own_templates_must_keep_the_unsubscribe_link(tmp_path: Path, example: Edition) -> None:
    """A publication's template copy is used, and refused if it drops the unsubscribe link."""
    import shutil

    from digest.errors import TemplateError
    from digest.render.templating import default_templates_dir

    own = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), own)
    mjml_file = own / "email" / "edition.mjml.j2"
    mjml_file.write_text(mjml_file.read_text().replace("Recommended Reads", "Worth Your Time"))
    rendered = render_edition(Renderer.create(Publication(), own), example)
    assert "Worth Your Time" in rendered.html
    mjml_file.write_text(mjml_file.read_text().replace("{{ recipient.unsubscribe_url }}", "#"))
    with pytest.raises(TemplateError, match="has no unsubscribe link"):
        render_edition(Renderer.create(Publication(), own), example)
    mjml_file.write_text(mjml_file.read_text().replace("{{ title }}", "{{ titel }}"))
    with pytest.raises(TemplateError, match="'titel' is undefined"):
        render_edition(Renderer.create(Publication(), own), example)


def test_confirmation_email_goes_through_the_same_pipeline(
    renderer: Renderer, tmp_path: Path
) -> None:
    """confirm.* renders to inlined HTML and text, each with its link; without it, refused."""
    from digest.render.renderer import render_email

    email = render_email(renderer, "confirm", "Confirm", {"confirm_days": 7}, "confirm_url")
    assert "[[confirm_url]]" in email.html and "[[confirm_url]]" in email.text
    assert 'style="' in email.html and "works for 7 days" in email.html
    broken = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), broken)
    source = (broken / "email" / "confirm.txt.j2").read_text()
    (broken / "email" / "confirm.txt.j2").write_text(
        source.replace("{{ recipient.confirm_url }}", "(link removed)")
    )
    with pytest.raises(TemplateError, match=r"confirm\.txt\.j2 must contain"):
        render_email(
            Renderer.create(renderer.publication, broken),
            "confirm",
            "C",
            {"confirm_days": 7},
            "confirm_url",
        )


def test_control_characters_in_content_never_stop_the_edition(
    renderer: Renderer, example: Edition
) -> None:
    """A stray control byte (a feed entry's note, a pasted section) is dropped, not fatal."""
    read = Read("Grain\x1b[2J prices", "https://example.org/grain", "Wire\x07", "Note\x1f here")
    section = replace(example.sections[0], body="Paragraph with\x0b a vertical tab and \x1f.")
    edition = replace(example, reads=(*example.reads, read), sections=(section,))
    rendered = render_edition(renderer, edition)
    for output in (rendered.html, rendered.text):
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", output)
    assert "Note here" in rendered.text and "Grain[2J prices" in rendered.text
    assert squeeze("Paragraph with a vertical tab") in squeeze(visible(rendered.html))


TRICKY = """Intro with a [link](https://a.example/x)s, an [](https://b.example) empty one,
a hard break\\
and ![a chart](https://c.example/c.png) inline; non\u00a0breaking\u2003spaces.

1. first item that is long enough to be wrapped by the plain-text twin at seventy-two
2. second

   > quoted *inside* the list, also [linked](https://d.example)

### A heading — with _emphasis_

    code block line one
    code_block two

---

- a
- b: ___ --- 42
"""


def test_each_piece_of_markdown_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, renderer: Renderer, example: Edition
) -> None:
    """One parse per section body (HTML, text twin and word count share it), none per line."""
    bodies: list[str] = []
    real = MarkdownIt.parse

    def counted(parser: MarkdownIt, source: str, env: Any = None) -> Any:
        bodies.append(source)
        return real(parser, source, env)

    monkeypatch.setattr(MarkdownIt, "parse", counted)  # whichever parser a body goes to
    rendered = render_edition(renderer, example)
    assert sorted(bodies) == sorted(section.body for section in example.sections)
    assert rendered.words == 553  # as counted before, from three parses


def test_word_count_is_that_of_the_text_twin_without_link_numbers() -> None:
    """Counted from the unwrapped walk, the words are those of the wrapped text."""
    parsed = Parsed.body(TRICKY)
    assert parsed.words() == word_count(markdown_block(TRICKY)) == 54
    assert markdown_block(TRICKY) == parsed.text()
    assert "[1]" in parsed.text(LinkList()) and "[1]" not in parsed.text()
