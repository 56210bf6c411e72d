from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from digest.render.placeholders import Personalisable, escape_html, marker, neutralise

values = st.fixed_dictionaries(
    {"unsubscribe_url": st.text(max_size=40), "recipient_email": st.text(max_size=40)}
)
literal = st.text(max_size=40).map(neutralise)


@given(
    st.lists(st.tuples(literal, st.sampled_from(["unsubscribe_url", "recipient_email"]))),
    literal,
    values,
)
def test_fill_equals_plain_replacement(
    parts: list[tuple[str, str]], tail: str, fill: dict[str, str]
) -> None:
    """Filling the compiled pieces gives the same text as replacing each marker."""
    template = "".join(text + marker(name) for text, name in parts) + tail
    expected = template
    for name, value in fill.items():
        expected = expected.replace(marker(name), value)
    assert Personalisable.compile(template).fill(fill) == expected


@given(st.text(max_size=80))
@example("[[[recipient_email]]")
def test_neutralised_text_has_no_placeholders(text: str) -> None:
    """Editor text, once neutralised, never contains a fillable marker."""
    assert Personalisable.compile(neutralise(text)).fields == ()


def test_html_values_are_escaped() -> None:
    """A value with markup characters cannot break out of an attribute."""
    template = Personalisable.compile('<a href="[[unsubscribe_url]]">x</a>')
    filled = template.fill({"unsubscribe_url": '"><script>'}, escape_html)
    assert filled == '<a href="&#34;&gt;&lt;script&gt;">x</a>'


def test_unknown_placeholder_is_refused() -> None:
    """A template typo like [[unsubscribe_ulr]] fails loudly instead of reaching readers."""
    with pytest.raises(KeyError):
        Personalisable.compile("[[unsubscribe_ulr]]")
    with pytest.raises(KeyError):
        marker("nope")
