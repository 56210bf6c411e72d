"""Bounce or reply: decided by who wrote it, not by words that look like a bounce's.

Pure: raw messages through ``parse`` and ``classify``, no database. The corpus
(tests/data/feedback/, corpus.toml) files the same forms end to end.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from digest.feedback.classify import Mailboxes, classify
from digest.feedback.kinds import Kind
from digest.feedback.parse import parse
from tests.helpers import FEEDBACK_DATA, message_id

MAILBOXES = Mailboxes(
    contact="desk@news.example.org",
    unsubscribe=("unsubscribe", "news.example.org"),
    bounce=("bounces", "news.example.org"),
    suggest_subjects=("story suggestion", "share my story"),
)
SUBJECT = "Re: Returned mail piles up as the postal strike enters day 9"
PASTED = (
    "Every return says the same thing:\n\n"
    "----- The following addresses had permanent fatal errors -----\n"
    "<office@harbourfamilies.example.net>\n"
    "    (reason: 550 5.1.1 <office@harbourfamilies.example.net>... User unknown)\n"
)


def message(body: str, *, sender: str = "Ana Lima <ana.lima@gmail.com>", **headers: str) -> bytes:
    """A plain-text message from ``sender``; ``headers`` as Python names (In_Reply_To)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "desk@news.example.org"
    mail["Subject"] = SUBJECT
    mail["Message-ID"] = "<CAJ7fR+q1@mail.gmail.com>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


def test_a_bounce_layout_pasted_into_a_reply_to_our_delivery_is_a_reply() -> None:
    """flufl.bounce recognises the layout, but a person answering our delivery is a reply."""
    parsed = parse(message(PASTED, In_Reply_To=message_id(1)))
    assert parsed.report.kind == "bounce" and not parsed.report.from_mailer
    assert classify(parsed, MAILBOXES, linked=True, answers_ours=True) is Kind.reply
    # the same layout from nobody answering us is still taken for a mailer's
    assert classify(parsed, MAILBOXES, linked=False, answers_ours=False) is Kind.bounce
    assert "The following addresses had permanent fatal errors" in parsed.text  # not cut


@pytest.mark.parametrize(
    "body",
    ["Since 5.1.1 of the new rota we sort alone.", "The union calls it clause 4.4.2."],
)
def test_a_status_code_in_a_person_s_words_is_no_report(body: str) -> None:
    """A status code in the text counts only from a mail system, not under a bounce-like
    subject from a person, with or without a link to our delivery."""
    for headers in ({}, {"In_Reply_To": message_id(1)}):
        assert parse(message(body, **headers)).report.kind is None


def test_a_vacation_notice_s_date_is_no_status_code() -> None:
    """A null sender alone (auto-replies have one too) does not make "5.11.17" a bounce."""
    raw = message(
        "Ich bin ab dem 5.11.17 wieder im Büro.",
        sender="Dieter Müller <dieter.mueller@example.de>",
        Return_Path="<>",
        Auto_Submitted="auto-replied (vacation)",
    ).replace(SUBJECT.encode(), b"Abwesenheitsnotiz")
    parsed = parse(raw)
    assert parsed.report.kind is None
    assert classify(parsed, MAILBOXES, linked=True, answers_ours=True) is Kind.auto_reply


@pytest.mark.parametrize("name", ["bounce-gmail.eml", "bounce-m365.eml", "bounce-postfix.eml"])
def test_a_mail_system_s_bounce_answering_our_delivery_stays_a_bounce(name: str) -> None:
    """Gmail's and Microsoft 365's bounces carry In-Reply-To; their headers say mailer."""
    parsed = parse((FEEDBACK_DATA / name).read_bytes())
    assert parsed.report.from_mailer
    assert classify(parsed, MAILBOXES, linked=True, answers_ours=True) is Kind.bounce


def test_mailer_status_code_in_text_still_reads_as_a_bounce() -> None:
    """A plain-text bounce from MAILER-DAEMON with only a status code is still one."""
    raw = message(
        "Your message could not be delivered.\n550 5.1.1 <jon.berg@example.no>: no such user\n",
        sender="MAILER-DAEMON@mx.example.no (Mail Delivery System)",
        Return_Path="<>",
    )
    parsed = parse(raw)
    assert (parsed.report.kind, parsed.report.status) == ("bounce", "5.1.1")
    assert classify(parsed, MAILBOXES, linked=False) is Kind.bounce
