"""The DATA payload built from parts stuffed once equals the whole message stuffed."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from digest.ledger import FrozenEdition, Recipient
from digest.send.compose import EditionComposer
from digest.send.links import Links
from digest.send.transport import dot_stuffed
from digest.send.wire import Part, data_payload, raw_message
from digest.settings import Settings

SETTINGS = Settings(secret_key=SecretStr("wire-tests-secret-0123456"))
NOW = datetime(2017, 11, 2, 7, 0, tzinfo=UTC)

#: Bytes that make dots and line breaks meet at every kind of place.
_PIECES = st.lists(st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"a", b"=\r\n", b""]))


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES.map(b"".join), max_size=8))
def test_any_parts_give_what_stuffing_the_joined_message_gives(pieces: list[bytes]) -> None:
    parts = [Part(piece) for piece in pieces]
    assert raw_message(parts) == b"".join(pieces)
    assert data_payload(parts) == dot_stuffed(b"".join(pieces))


def test_a_trimmed_part_stays_stuffed_inside() -> None:
    part = Part(b"one\r\n.two\r\n").removesuffix(b"\r\n")
    assert (part.raw, part.stuffed) == (b"one\r\n.two", b"one\r\n..two")
    assert data_payload([part, Part(b".\r\n")]) == dot_stuffed(b"one\r\n.two.\r\n")


def test_a_composed_message_with_dots_at_line_starts_goes_over_stuffed() -> None:
    """Dots opening lines of both bodies, next to placeholders, and in the values."""
    text = ".starts with a dot\n..two dots\n.\n{{ unsubscribe_url }}\n.{{ recipient_email }}.\n."
    html = "<p>\n.dot</p>\n.{{ unsubscribe_url }}\n{{ recipient_email }}\n.end"
    edition = FrozenEdition(
        id=3, date=date(2017, 11, 2), version=1, subject="S", html=html, text=text, salt="s"
    )
    composer = EditionComposer(edition, SETTINGS, Links.from_settings(SETTINGS))
    for email in ("reader@example.org", ".dotted@example.org", "a.b@example.org"):
        composed = composer.compose(Recipient(9, 4, email, email, None, 0), NOW)
        assert b"\r\n.." in composed.stuffed  # there were dots to double
        assert composed.stuffed == dot_stuffed(composed.raw)
