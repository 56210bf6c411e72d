from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.edition.model import Edition
from digest.edition.parse import load_edition, parse_edition
from digest.errors import EditionError
from tests.helpers import edition_text

GOOD_BODY = "## First headline\n\nA paragraph.\n\n## Second headline\n\nAnother one.\n"


def problems(text: str, path: str = "editions/2017-11-02.md") -> list[tuple[int | None, str]]:
    with pytest.raises(EditionError) as caught:
        parse_edition(text, path)
    assert all(p.path == path for p in caught.value.problems)
    return [(p.line, p.message) for p in caught.value.problems]


def test_example_shape(example: Edition) -> None:
    """The shipped example parses into its sections and reads with a default title."""
    assert example.date == date(2017, 11, 2)
    assert example.title == "Executive Summary for November 2nd"
    assert example.subject == example.title
    assert len(example.sections) == 4
    assert example.sections[0].headline.startswith("Harbour workers")
    assert len(example.reads) == 4
    assert example.reads[1].note is None


def test_sections_split_at_level_two_headings_only() -> None:
    """'## ' inside code blocks or quotes does not open a section; bodies keep their Markdown."""
    body = "## One\n\nPara *em*.\n\n```\n## not a heading\n```\n\n> ## quoted\n\n## Two\n\nEnd.\n"
    edition = parse_edition(edition_text(body), "x.md")
    assert [s.headline for s in edition.sections] == ["One", "Two"]
    assert "## not a heading" in edition.sections[0].body
    assert edition.sections[0].line == 4
    assert edition.sections[1].body == "End."


def test_front_matter_values_are_kept_as_written() -> None:
    """YAML 1.1 booleans and numbers stay text: a title 'No' is the word No."""
    front = "date: 2017-11-02\ntitle: No\nsubject: 2017\nsummary: yes, really\n"
    edition = parse_edition(edition_text(GOOD_BODY, front), "x.md")
    assert (edition.title, edition.subject, edition.summary) == ("No", "2017", "yes, really")


def test_missing_date() -> None:
    """No date: the error names the front matter line."""
    assert problems(edition_text(GOOD_BODY, "title: Hello\n")) == [
        (2, "missing 'date: YYYY-MM-DD' in the front matter")
    ]


@pytest.mark.parametrize("value", ["2017-13-02", "02/11/2017", "2017-11-2", "tomorrow", "20171102"])
def test_malformed_date(value: str) -> None:
    """A date that is not a real YYYY-MM-DD is refused, pointing at its line."""
    found = problems(edition_text(GOOD_BODY, f"title: T\ndate: {value}\n"))
    assert len(found) == 1
    assert found[0][0] == 3
    assert f"date '{value}' is not a valid date" in found[0][1]


def test_date_disagrees_with_file_name() -> None:
    """A file named for one day cannot hold another day's edition."""
    found = problems(edition_text(GOOD_BODY, "date: 2017-11-03\n"), "editions/2017-11-02.md")
    assert found == [
        (
            2,
            "date 2017-11-03 disagrees with the file name 2017-11-02.md; "
            "rename the file or fix the date",
        )
    ]


def test_no_sections() -> None:
    """An edition without a '## ' heading is refused with what to add."""
    found = problems(edition_text(""))
    assert len(found) == 1
    assert "no sections" in found[0][1]
    assert found[0][0] == 4


def test_text_before_first_section_is_not_lost() -> None:
    """Prose before the first heading would vanish, so it is an error with its line."""
    found = problems(edition_text("\nStray intro.\n\n" + GOOD_BODY))
    assert found == [
        (
            5,
            "text before the first '## ' heading would be lost; move it under a heading "
            "or into 'summary:' in the front matter",
        )
    ]


def test_level_one_heading_and_empty_heading() -> None:
    """'# ' is not a section heading and '## ' needs text."""
    found = problems(edition_text("## Good\n\nText.\n\n# Big\n\n## \n\nBody.\n"))
    assert (8, "'# Big' is a level-1 heading; sections start with '## '") in found
    assert (10, "a '## ' section heading with no headline text") in found


def test_read_without_url_and_with_bad_url() -> None:
    """Reads need an http(s) URL; each problem names the read and its line."""
    front = (
        "date: 2017-11-02\nreads:\n"
        "  - title: No link\n"
        "  - title: Script\n    url: javascript:alert(1)\n"
        "  - title: Relative\n    url: /local/page\n"
        "  - url: https://example.org/untitled\n"
    )
    found = problems(edition_text(GOOD_BODY, front))
    assert (4, "read #1 has no 'url': add the link to the piece") in found
    assert (
        5,
        "read URL 'javascript:alert(1)' must be an absolute http:// or https:// address",
    ) in found
    assert (7, "read URL '/local/page' must be an absolute http:// or https:// address") in found
    assert (9, "read #4 has no 'title': add the headline of the piece") in found


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    """A typo in a key is never silently ignored."""
    front = "date: 2017-11-02\nsumary: Typo here\nreads:\n  - title: T\n    url: https://e.org\n    nite: x\n"
    found = problems(edition_text(GOOD_BODY, front))
    assert found[0][0] == 3
    assert found[0][1].startswith("unknown front-matter key 'sumary' (did you mean 'summary'?)")
    assert found[1][0] == 7
    assert found[1][1].startswith("unknown key 'nite' in read #1 (did you mean 'note'?)")


def test_invalid_yaml_names_the_line() -> None:
    """A YAML syntax error points at the file line, not the front-matter line."""
    found = problems(edition_text(GOOD_BODY, "date: 2017-11-02\ntitle: [unclosed\nsummary: x\n"))
    assert len(found) == 1
    assert found[0][1].startswith("invalid YAML in the front matter")
    assert found[0][0] in (3, 4)


def test_missing_or_unclosed_front_matter() -> None:
    """The file must open with '---' and close the front matter."""
    assert problems(GOOD_BODY)[0][0] == 1
    assert "never closed" in problems("---\ndate: 2017-11-02\n" + GOOD_BODY)[0][1]


def test_all_problems_reported_together() -> None:
    """An editor sees every problem in one run, not one per attempt."""
    front = "date: 2017-11-05\ntitel: x\nreads:\n  - title: T\n"
    assert len(problems(edition_text("", front))) == 4


def test_undecodable_file(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 give an error with the line, not a traceback."""
    path = tmp_path / "2017-11-02.md"
    path.write_bytes(b"---\ndate: 2017-11-02\n---\n## H\n\ncaf\xe9\n")
    with pytest.raises(EditionError) as caught:
        load_edition(path)
    assert caught.value.problems[0].line == 6
    assert "UTF-8" in caught.value.problems[0].message


def test_windows_line_endings_and_bom() -> None:
    """Files saved by Windows editors parse the same."""
    text = "\ufeff" + edition_text(GOOD_BODY).replace("\n", "\r\n")
    assert len(parse_edition(text, "x.md").sections) == 2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_parses_or_raises_edition_error(text: str) -> None:
    """Whatever an editor saves, the parser answers with an Edition or an EditionError."""
    try:
        parse_edition(edition_text(text), "x.md")
    except EditionError as exc:
        assert exc.problems


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_front_matter_parses_or_raises_edition_error(front: str) -> None:
    """Garbage front matter is an EditionError, never a crash."""
    try:
        parse_edition(f"---\n{front}\n---\n{GOOD_BODY}", "x.md")
    except EditionError as exc:
        assert exc.problems


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
sentences = st.lists(words, min_size=1, max_size=12).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(sentences, st.lists(sentences, min_size=1, max_size=4)), min_size=1, max_size=6
    )
)
def test_generated_sections_round_trip(sections: list[tuple[str, list[str]]]) -> None:
    """Headlines and paragraphs written in the format come back out unchanged."""
    body = "".join(f"## {head}\n\n" + "\n\n".join(paras) + "\n\n" for head, paras in sections)
    edition = parse_edition(edition_text(body), "x.md")
    assert [(s.headline, s.body.split("\n\n")) for s in edition.sections] == [
        (head, paras) for head, paras in sections
    ]
