"""The example email in a real browser (headless Chromium) at phone and desktop widths."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from digest.edition.model import Edition
from digest.render.renderer import RenderedEdition, Renderer, render_edition
from digest.settings import Publication
from tests.helpers import ARTIFACTS


def open_email(browser: Any, html: str, width: int, tmp_path: Path) -> Any:
    page_file = tmp_path / "email.html"
    page_file.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(page_file.as_uri())
    return page


def boxes(page: Any, selector: str) -> list[dict[str, float]]:
    return list(
        page.eval_on_selector_all(
            selector,
            "els => els.map(e => { const r = e.getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })",
        )
    )


def test_phone_width_has_no_horizontal_scroll_and_stacks(
    browser: Any, example_rendered: RenderedEdition, tmp_path: Path
) -> None:
    """At 375 px nothing overflows sideways and everything stacks in one column."""
    page = open_email(browser, example_rendered.html, 375, tmp_path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    sections = boxes(page, ".digest-section")
    assert len(sections) == 4
    assert all(abs(box["x"] - sections[0]["x"]) < 1 for box in sections)
    assert all(box["width"] <= 375 for box in sections)
    assert all(a["y"] + a["height"] <= b["y"] + 1 for a, b in itertools.pairwise(sections))
    first, second = boxes(page, ".digest-cta-column")
    assert abs(first["x"] - second["x"]) < 1, "the two calls to action should stack"
    assert second["y"] >= first["y"] + first["height"] - 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "email-375.png"), full_page=True)
    page.close()


def test_desktop_width_centres_the_designed_column(
    browser: Any, example_rendered: RenderedEdition, tmp_path: Path
) -> None:
    """At 700 px the content is the designed 600 px wide, centred; the CTAs sit side by side."""
    page = open_email(browser, example_rendered.html, 700, tmp_path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 700
    for box in boxes(page, ".digest-section"):
        assert abs(box["width"] - 600) < 1
        assert abs(box["x"] - 50) < 1
    first, second = boxes(page, ".digest-cta-column")
    assert abs(first["y"] - second["y"]) < 1, "the two calls to action should sit side by side"
    assert second["x"] > first["x"] + first["width"] - 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "email-700.png"), full_page=True)
    page.close()


def test_logo_is_its_designed_size_and_the_preheader_unseen(
    browser: Any, example: Edition, tmp_path: Path
) -> None:
    """With a logo the masthead shows it 160 px wide; the hidden preview line takes no space."""
    publication = Publication(logo_url="https://ledger.example.com/logo.png")
    rendered = render_edition(Renderer.create(publication), example)
    page = open_email(browser, rendered.html, 700, tmp_path)
    (logo,) = boxes(page, "img")
    assert abs(logo["width"] - 160) < 1
    preheader = page.locator("body div[style*='display:none']")
    assert preheader.text_content() == example.summary
    assert not preheader.is_visible()
    assert page.inner_text("body").count(example.summary) == 1  # the dek, shown once
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "email-logo-700.png"), full_page=True)
    page.close()
