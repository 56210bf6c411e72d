"""Golden files for the example edition. Rewrite on purpose with DIGEST_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.render.renderer import RenderedEdition
from tests.helpers import DATA

GOLDEN = DATA / "golden"
UPDATE = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"


def compare(name: str, actual: str) -> None:
    path: Path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        pytest.skip(f"rewrote {path}")
    assert path.is_file(), f"{path} is missing; create it with DIGEST_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        old, new = expected.splitlines(), actual.splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        pytest.fail(
            f"{name} differs from the golden file at line {first + 1}:\n"
            f"  golden: {old[first] if first < len(old) else '<end>'}\n"
            f"  now:    {new[first] if first < len(new) else '<end>'}\n"
            "If the change is intended, rerun with DIGEST_UPDATE_GOLDEN=1 and review the diff."
        )


def test_example_html_matches_golden(example_rendered: RenderedEdition) -> None:
    """The example edition's HTML (placeholders open) is exactly the reviewed one."""
    compare("example-2017-11-02.html", example_rendered.html)


def test_example_text_matches_golden(example_rendered: RenderedEdition) -> None:
    """The example edition's text twin is exactly the reviewed one."""
    compare("example-2017-11-02.txt", example_rendered.text)
