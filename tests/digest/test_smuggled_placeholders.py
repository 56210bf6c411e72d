"""Per-recipient placeholders come only from the templates, whatever the content says.

An edition's prose, its reads (from the file, the queue or a feed) and its subject
may spell ``[[recipient_email]]`` in any form Markdown or a URL resolves; none of
them may become a field the sender fills with a reader's address or unsubscribe link.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.edition.model import Edition, Read, Section
from digest.errors import TemplateError
from digest.render.placeholders import Personalisable, escape_html
from digest.render.renderer import Renderer, personalise, render_edition
from digest.render.templating import default_templates_dir
from subscribers.db import Database
from tests.helpers import add_subscribers, deliveries, edition_text, run
from tests.mailserver import SMTPServer, text_part
from tests.webserver import Site

TRACKER = "https://tracker.example/a?who=[[recipient_email]]&u=[[unsubscribe_url]]"

FEED = f"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire [[recipient_email]]</title>
<item><title>Feed piece [[unsubscribe_url]]</title><link>{TRACKER.replace("&", "&amp;")}</link>
<description>Note \\[\\[recipient_email\\]\\]</description>
<pubDate>Thu, 02 Nov 2017 05:00:00 GMT</pubDate></item>
</channel></rss>"""

FRONT = """date: 2017-11-02
title: 'Title [\\[confirm_url]] [[recipient_email]]'
subject: 'Subject \\[\\[recipient_email\\]\\] &#91;&#91;unsubscribe_url&#93;&#93; [[recipient_email]]'
summary: 'Dek \\[\\[recipient_email\\]\\] and &#91;&#91;unsubscribe_url&#93;&#93;'
reads:
  - title: 'Read \\[\\[recipient_email\\]\\] [[unsubscribe_url]]'
    url: 'https://reads.example/p?e=[[recipient_email]]&u=[[unsubscribe_url]]'
    source: '&#91;&#91;unsubscribe_url&#93;&#93;'
    note: '[\\[confirm_url]]'
"""

BODY = """## Headline \\[\\[recipient_email\\]\\]

Escaped: \\[\\[recipient_email\\]\\]. Entities: &#91;&#91;unsubscribe_url&#93;&#93;.
Half-escaped: [\\[confirm_url]]. Tripled: [[[recipient_email]]. Autolink: <https://t.example/x?w=[[recipient_email]]>.
A [link](https://t.example/y?u=[[unsubscribe_url]]) and `[[recipient_email]]` in code.
"""

SMUGGLED = [
    "[[recipient_email]]",
    "[[[recipient_email]]",
    "\\[\\[recipient_email\\]\\]",
    "&#91;&#91;unsubscribe_url&#93;&#93;",
    "[\\[confirm_url]]",
    "&lbrack;&lsqb;recipient_email&rsqb;&rbrack;",
    "<https://t.example/?w=[[recipient_email]]>",
    "[x](https://t.example/?u=[[unsubscribe_url]])",
    "[",
    "]",
    "\\",
    "`",
    "\n\n",
]

EMAIL = "reader.q7z@example.org"
UNSUBSCRIBE = "https://list.example.org/unsubscribe/TOKEN-q7z"
VALUES = {"recipient_email": EMAIL, "unsubscribe_url": UNSUBSCRIBE}


def test_smuggled_placeholders_are_sent_literally_to_real_readers(
    desk: Path,
    db: Database,
    smtp_server: SMTPServer,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """File, queue and feed content spelling placeholders reach each reader as text, never filled."""
    (desk / "editions" / "2017-11-02.md").write_text(edition_text(BODY, FRONT), encoding="utf-8")
    monkeypatch.setenv(
        "DIGEST_READS__FEEDS",
        json.dumps([site.page("/feed.xml", FEED, kind="application/rss+xml")]),
    )
    code, _, err = run(
        ["reads", "add", "https://queued.example/q?e=[[recipient_email]]", "--title", "Queued"],
        capsys,
    )
    assert code == 0, err
    code, _, err = run(["check", "2017-11-02"], capsys)
    assert code == 0, err
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 0, err
    assert [d.status.value for d in deliveries(db)] == ["sent", "sent"]
    assert sorted(m.recipients[0] for m in smtp_server.inbox.messages) == [
        "ann@example.org",
        "bo@example.org",
    ]
    for received in smtp_server.inbox.messages:
        message = received.message
        address = received.recipients[0]
        unsubscribe = str(message["List-Unsubscribe"]).split(">")[0].lstrip("<")
        text = text_part(message)
        html_part = message.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        # Only the footer names the reader and carries the link: nowhere the content was.
        assert text.count(address) == 1 and html.count(address) == 1
        assert text.count(unsubscribe) == 1 and html.count(escape_html(unsubscribe)) == 1
        assert address not in str(message["Subject"])
        # The content is there, as harmless text and as links that still work.
        for literal in ("[\u2060[recipient_email]]", "[\u2060[unsubscribe_url]]"):
            assert literal in text and literal in html
        assert "[\u2060[confirm_url]]" in text and "[\u2060[confirm_url]]" in html
        for url in (TRACKER, "https://queued.example/q?e=[[recipient_email]]"):
            encoded = url.replace("[[", "%5B%5B").replace("]]", "%5D%5D")
            assert encoded in text and escape_html(encoded) in html
        assert "recipient_email" in str(message["Subject"])


def test_edition_template_asking_for_confirm_url_fails_check_not_send(
    clean_env: Path, renderer: Renderer, example: Edition
) -> None:
    """A field an edition's sender cannot fill is refused when rendering, before anything freezes."""
    own = clean_env / "templates"
    shutil.copytree(default_templates_dir(), own)
    text_file = own / "email" / "edition.txt.j2"
    text_file.write_text(text_file.read_text() + "Confirm: {{ recipient.confirm_url }}\n")
    with pytest.raises(TemplateError, match="confirm_url"):
        render_edition(Renderer.create(renderer.publication, own), example)


# Control characters are left out: MJML refuses them whatever the placeholders (a separate issue).
_characters = st.characters(blacklist_categories=("Cs", "Cc"))
content = st.lists(
    st.one_of(st.text(_characters, max_size=6), st.sampled_from(SMUGGLED)), max_size=6
).map("".join)


def _edition(pieces: list[str]) -> Edition:
    title, subject, summary, headline, body, read_title, url, source, note = pieces
    return Edition(
        date=date(2017, 11, 2),
        title=title or "T",
        subject=subject or "S",
        summary=summary,
        sections=(Section(headline or "H", body or "Body."),),
        reads=(Read(read_title or "R", "https://r.example/" + url, source or None, note or None),),
    )


NEUTRAL = _edition(["Title", "Subject", "Dek", "Headline", "Body.", "Read", "x", "Src", "Note"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(content, min_size=9, max_size=9))
def test_any_content_puts_the_reader_only_where_the_template_does(
    renderer: Renderer, pieces: list[str]
) -> None:
    """For arbitrary content, the reader's address and link occur as often as for neutral text."""
    neutral_html, neutral_text = personalise(render_edition(renderer, NEUTRAL), VALUES)
    rendered = render_edition(renderer, _edition(pieces), allow_large=True)
    html, text = personalise(rendered, VALUES)  # a KeyError here would stop a send
    assert Personalisable.compile(rendered.subject).fields == ()
    assert html.count(escape_html(EMAIL)) == neutral_html.count(escape_html(EMAIL)) == 1
    assert text.count(EMAIL) == neutral_text.count(EMAIL) == 1
    assert html.count(UNSUBSCRIBE) == neutral_html.count(UNSUBSCRIBE) == 1
    assert text.count(UNSUBSCRIBE) == neutral_text.count(UNSUBSCRIBE) == 1
