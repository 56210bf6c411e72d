from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from digest.edition.model import ap_date, default_title, minutes_phrase, ordinal, reading_minutes


def test_default_title_uses_month_name_and_ordinal_day() -> None:
    """The default title reads like the newsroom's: month name, ordinal day."""
    assert default_title(date(2017, 11, 2)) == "Executive Summary for November 2nd"
    assert default_title(date(2018, 3, 11)) == "Executive Summary for March 11th"
    assert default_title(date(2018, 8, 23)) == "Executive Summary for August 23rd"


@given(st.integers(min_value=1, max_value=31))
def test_ordinal_suffixes(day: int) -> None:
    """Teens take 'th'; otherwise the last digit decides."""
    text = ordinal(day)
    assert text.startswith(str(day))
    expected = {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th") if day not in (11, 12, 13) else "th"
    assert text.endswith(expected)


def test_ap_style_dates() -> None:
    """Long month names are abbreviated AP-style; short ones are spelled out."""
    assert ap_date(date(2017, 11, 2)) == "Nov. 2, 2017"
    assert ap_date(date(2017, 9, 30)) == "Sept. 30, 2017"
    assert ap_date(date(2018, 6, 1)) == "June 1, 2018"


def test_reading_minutes_round_up_and_never_zero() -> None:
    """Any text takes at least a minute; partial minutes round up."""
    assert reading_minutes(0) == 1
    assert reading_minutes(230) == 1
    assert reading_minutes(231) == 2
    assert minutes_phrase(1) == "1 minute"
    assert minutes_phrase(3) == "3 minutes"
