"""What mail clients and filters read in the finished HTML, checked with a real HTML parser."""

from __future__ import annotations

from dataclasses import replace

import lxml.etree
import lxml.html

from digest.edition.model import Edition
from digest.render.renderer import Renderer, render_edition, render_email
from digest.settings import Publication

LOGO = "https://ledger.example.com/logo.png"


def styles(element: lxml.html.HtmlElement) -> dict[str, str]:
    """An element's inline CSS as property → value (lower-case names, no spaces)."""
    declarations = (part.partition(":") for part in element.get("style", "").split(";"))
    return {name.strip().lower(): value.strip() for name, colon, value in declarations if colon}


def test_images_keep_their_pixel_width_attribute(example: Edition) -> None:
    """Every <img width> is a pixel number (Outlook on Windows sizes images by it): the logo's 160.

    premailer used to copy the CSS ``width:100%`` over MJML's ``width="160"``.
    """
    section = replace(example.sections[0], body="![A chart](https://ledger.example.com/c.png)")
    edition = replace(example, sections=(section, *example.sections[1:]))
    html = render_edition(Renderer.create(Publication(logo_url=LOGO)), edition).html
    images = lxml.html.document_fromstring(html).iter("img")
    widths = {image.get("src"): image.get("width") for image in images}
    assert widths.keys() == {LOGO, "https://ledger.example.com/c.png"}
    assert widths[LOGO] == "160"
    assert all(width is None or width.isdigit() for width in widths.values()), widths


def test_preheader_is_hidden_without_a_colour(renderer: Renderer, example: Edition) -> None:
    """The inbox preview line is hidden by display:none and mso-hide, never by colour.

    Spam filters (SpamAssassin's HTML_FONT_LOW_CONTRAST) compare a text's colour with
    its background; MJML's mj-preview made the hidden text white on the page colour.
    """
    confirm = render_email(renderer, "confirm", "C", {"confirm_days": 7}, "confirm_url")
    for html, preview in (
        (render_edition(renderer, example).html, example.summary),
        (confirm.html, "One click and the briefing is yours."),
    ):
        body = lxml.html.document_fromstring(html).body
        hidden = [e for e in body.iter(lxml.etree.Element) if styles(e).get("display") == "none"]
        assert [e.text_content() for e in hidden] == [preview]
        assert styles(hidden[0]).get("mso-hide") == "all"
        assert body.text_content().strip().startswith(preview)  # the first text in the body
        assert "color" not in styles(hidden[0]), hidden[0].get("style")


def test_mjml_reset_stays_in_the_head_not_on_every_cell(
    renderer: Renderer, example: Edition
) -> None:
    """MJML's table reset and Outlook's mso-table-* live once in <style>, not in each cell.

    premailer used to copy ``border-collapse`` and ``mso-table-lspace/rspace`` onto every
    table and cell (64 times, 4 KB); the template's own CSS is still inlined.
    """
    html = render_edition(renderer, example).html
    document = lxml.html.document_fromstring(html)
    inline = [styles(e) for e in document.body.iter(lxml.etree.Element)]
    assert not [s for s in inline if "mso-table-lspace" in s]
    assert not [s for s in inline if s.get("border-collapse") == "collapse"]
    head = "".join(style.text or "" for style in document.head.iter("style"))
    assert "mso-table-lspace" in head and "border-collapse" in head
    paragraphs = [styles(p) for p in document.body.iter("p") if not p.get("class")]
    assert any(p.get("margin") == "0 0 14px" for p in paragraphs)  # the template's p rule
    links = [styles(a) for a in document.body.iter("a") if not a.get("class")]
    assert links and all(s.get("color") for s in links)
