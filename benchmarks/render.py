"""Render timings and sizes: `python benchmarks/render.py [--runs N]`.

Prints the median time to render one edition end to end, the median of each
stage (Jinja2, MJML, premailer, text twin), the per-recipient fill cost, and the
HTML size of the example edition and of one with 20 sections.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from digest.edition.files import EXAMPLE_EDITION
from digest.edition.model import Edition
from digest.edition.parse import load_edition
from digest.render.placeholders import Personalisable, escape_html
from digest.render.renderer import (
    Renderer,
    build_context,
    compile_mjml,
    count_words,
    inline_css,
    render_edition,
    render_mjml_source,
    render_text,
)
from digest.settings import Publication


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def report(label: str, renderer: Renderer, edition: Edition, runs: int) -> None:
    render_edition(renderer, edition, allow_large=True)  # warm caches
    context = build_context(edition, renderer.publication, count_words(edition))
    source = render_mjml_source(renderer, context)
    compiled = compile_mjml(source)
    total = median_ms(lambda: render_edition(renderer, edition, allow_large=True), runs)
    stages = {
        "context (Markdown)": median_ms(
            lambda: build_context(edition, renderer.publication, count_words(edition)), runs
        ),
        "Jinja2 (MJML source)": median_ms(lambda: render_mjml_source(renderer, context), runs),
        "MJML (mjml-python)": median_ms(lambda: compile_mjml(source), runs),
        "premailer (inline CSS)": median_ms(lambda: inline_css(compiled), runs),
        "text twin": median_ms(lambda: render_text(renderer, context), runs),
    }
    rendered = render_edition(renderer, edition, allow_large=True)
    print(f"{label}: {len(edition.sections)} sections, {len(edition.reads)} reads")
    print(f"  end to end (median of {runs}): {total:8.2f} ms")
    for name, value in stages.items():
        print(f"    {name:<24} {value:8.2f} ms")
    print(f"  HTML size: {rendered.html_bytes:,} bytes; text size: {rendered.text_bytes:,} bytes")
    html = Personalisable.compile(rendered.html)
    values = {
        "unsubscribe_url": "https://news.example.org/u/abcdef0123456789",
        "recipient_email": "a@b.org",
    }
    fills = 2000
    start = time.perf_counter()
    for _ in range(fills):
        html.fill(values, escape_html)
    per = (time.perf_counter() - start) / fills * 1e6
    print(f"  per-recipient fill of the HTML: {per:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    renderer = Renderer.create(Publication())
    example = load_edition(EXAMPLE_EDITION)
    report("example edition", renderer, example, args.runs)
    twenty = replace(example, sections=tuple(example.sections[i % 4] for i in range(20)))
    report("20-section edition", renderer, twenty, max(20, args.runs // 4))
    print("target: under 50 ms per edition end to end")


if __name__ == "__main__":
    main()
