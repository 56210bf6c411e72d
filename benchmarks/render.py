"""Render timings and sizes: `python -m benchmarks.render [--runs N]`.

Renders the example edition (4 sections, the seed) and one with 20 sections, and
prints medians (CPU time) in one table: end to end, then each stage (Markdown parsed once to
HTML, text and word count; Jinja2; MJML; premailer; the text twin). Beside ours, the
limit measured in the same run: markdown-it rendering each piece of Markdown once,
Jinja2 filling the same MJML template and mjml-python compiling it, which any render
must do. The HTML size is given as now and as it was when premailer also inlined
MJML's reset (``before``), and the per-recipient fill cost after it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import mjml
from premailer import Premailer

from benchmarks.measure import table
from digest.edition.files import EXAMPLE_EDITION
from digest.edition.model import Edition
from digest.edition.parse import load_edition
from digest.render.inlining import PREMAILER_OPTIONS, inline_css
from digest.render.markdown import PARSER
from digest.render.placeholders import Personalisable, escape_html
from digest.render.renderer import (
    ParsedEdition,
    Renderer,
    build_context,
    compile_mjml,
    render_edition,
    render_mjml_source,
    render_text,
)
from digest.settings import Publication


def median_ms(action: Callable[[], object], runs: int) -> float:
    """Median CPU time of this process (others' work on a shared machine inflates it less)."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def inline_everything(html: str) -> str:
    """premailer as it ran before: every <style>, MJML's reset too, inlined."""
    return str(
        Premailer("<!DOCTYPE html>" + html[15:], **PREMAILER_OPTIONS).transform(pretty_print=False)
    )


def floor(renderer: Renderer, edition: Edition, context: dict[str, object]) -> None:
    """What any render does: each piece of Markdown to HTML once, Jinja2, mjml-python."""
    PARSER.renderInline(edition.summary)
    for section in edition.sections:
        PARSER.renderInline(section.headline)
        PARSER.render(section.body)
    mjml.mjml2html(
        renderer.env.get_template("email/edition.mjml.j2").render(context),
        disable_comments=True,
        fonts={},
    )


def measure(renderer: Renderer, edition: Edition, runs: int) -> dict[str, str]:
    """One column of the table: this edition's figures, formatted."""
    render_edition(renderer, edition, allow_large=True)  # warm caches
    parsed = ParsedEdition.parse(edition)
    context = build_context(parsed, renderer.publication)
    source = render_mjml_source(renderer, context)
    compiled = compile_mjml(source)
    rendered = render_edition(renderer, edition, allow_large=True)
    html = Personalisable.compile(rendered.html)
    values = {"unsubscribe_url": "https://news.example.org/u/abc", "recipient_email": "a@b.org"}
    fills = 1000
    start = time.perf_counter()
    for _ in range(fills):
        html.fill(values, escape_html)
    fill_us = (time.perf_counter() - start) / fills * 1e6

    def context_stage() -> None:
        parsed = ParsedEdition.parse(edition)
        build_context(parsed, renderer.publication)

    figures = {
        "end to end": median_ms(lambda: render_edition(renderer, edition, allow_large=True), runs),
        "limit: markdown-it once + Jinja2 + mjml-python": median_ms(
            lambda: floor(renderer, edition, context), runs
        ),
        "Markdown, parsed once (HTML, text, words)": median_ms(context_stage, runs),
        "Jinja2 (MJML source)": median_ms(lambda: render_mjml_source(renderer, context), runs),
        "MJML (mjml-python)": median_ms(lambda: compile_mjml(source), runs),
        "premailer, template CSS only": median_ms(lambda: inline_css(compiled), runs),
        "premailer, MJML reset inlined too (before)": median_ms(
            lambda: inline_everything(compiled), runs
        ),
        "text twin (Jinja2)": median_ms(lambda: render_text(renderer, context), runs),
    }
    column = {name: f"{value:.2f} ms" for name, value in figures.items()}
    column["HTML bytes"] = f"{len(inline_css(compiled).encode()):,}"
    before = inline_everything(compiled)
    column["HTML bytes, MJML reset inlined (before)"] = f"{len(before.encode()):,}"
    column["text bytes"] = f"{rendered.text_bytes:,}"
    column["per-recipient fill of the HTML"] = f"{fill_us:.1f} µs"
    return column


def warm_up(renderer: Renderer, edition: Edition, seconds: float) -> None:
    """Render, untimed, for ``seconds``: an idle core runs at a lower clock at first (a
    run on an idle machine measured 4.3 / 12.1 ms, the same with the other core busy 2.5
    / 7.3), and the first renders fill caches; both would be measured, not our code."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        render_edition(renderer, edition, allow_large=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    renderer = Renderer.create(Publication())
    example = load_edition(EXAMPLE_EDITION)
    twenty = replace(example, sections=tuple(example.sections[i % 4] for i in range(20)))
    warm_up(renderer, twenty, 3.0)
    seed = measure(renderer, example, args.runs)
    large = measure(renderer, twenty, max(20, args.runs // 2))
    print(
        table(
            ["median of runs", "seed edition (4 sections)", "20 sections"],
            [[name, seed[name], large[name]] for name in seed],
        )
    )
    print("targets: the seed edition in 5 ms or less, 20 sections in 10 ms or less, end to end")


if __name__ == "__main__":
    main()
