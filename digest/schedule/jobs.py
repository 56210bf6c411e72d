"""What the scheduler runs. Referenced by import path ("digest.schedule.jobs:daily_send").

Each job loads the settings when it fires, does its work through the same code
as the commands (assembly, the ledger, the sender), logs what it did, and tells
the editors by email when something needs them. A job never raises into the
scheduler for a problem it can describe: the service keeps running.
"""

from __future__ import annotations

import logging
from pathlib import Path

from digest import ledger
from digest.assemble.day import assemble
from digest.clock import today, utc_now
from digest.database import open_database
from digest.errors import DigestError, NoRecipientsError, TransportError
from digest.feedback.imap import Fetcher
from digest.feedback.kinds import counted
from digest.feedback.store import Filer
from digest.ledger import FrozenEdition
from digest.send.message import build_message, mailbox, new_message_id, to_bytes
from digest.send.publish import freeze_assembled, freeze_source, plan_send, send_drafts
from digest.send.transport import open_transport
from digest.settings import Settings, load_settings
from digest.words import plural
from subscribers.db import Database
from subscribers.errors import AudienceError

log = logging.getLogger("digest.schedule.jobs")


def _settings(config: str | None) -> Settings:
    return load_settings(Path(config) if config else None)


def notify_editors(settings: Settings, subject: str, text: str) -> None:
    """A plain message to the editors (``schedule.editors``); logged if it can't go."""
    editors = settings.schedule.editors
    if not editors:
        log.warning("no schedule.editors to tell: %s", subject)
        return
    publication = settings.publication
    now = utc_now()
    try:  # not open_delivery: no links in it, and it must go even to say web.public_url is wrong
        transport = open_transport(
            settings.delivery_url.get_secret_value(), settings.delivery.timeout_seconds
        )
        try:
            for editor in editors:
                message = build_message(
                    sender=mailbox(publication.from_name, publication.sender_email),
                    to=mailbox(None, editor),
                    subject=f"[{publication.name}] {subject}",
                    text=text + "\n",
                    html=None,
                    message_id=new_message_id(publication.sender_email.rpartition("@")[2]),
                    now=now,
                    headers={"Auto-Submitted": "auto-generated"},
                )
                transport.send(
                    to_bytes(message, publication.sender_email, editor),
                    publication.sender_email,
                    editor,
                )
        finally:
            transport.close()
    except TransportError as exc:
        log.error("could not tell the editors (%s): %s", subject, exc)


def scheduled_send(edition: str, source: str, config: str | None = None) -> None:
    """An editor's scheduled send: validate the file again now, then send (or resume)."""
    settings = _settings(config)
    log.info("scheduled send of the edition of %s is due", edition)
    try:
        with open_database(settings.database_url) as db:
            frozen = freeze_source(db, settings, source, probe=True)
            _deliver(db, settings, frozen.edition.label, frozen.edition, probed=frozen.created)
    except TransportError as exc:  # the relay is down, the outbox unwritable: no traceback
        log.error("scheduled send of %s did not go out: %s", edition, exc)
        notify_editors(settings, f"the scheduled send of {edition} did not go out", str(exc))
    except NoRecipientsError as exc:  # nothing frozen: a later send reaches those who join
        _nobody_to_send_to(settings, edition, exc)
    except Exception as exc:  # any failure: logged and told; the service keeps running
        log.exception("scheduled send of %s failed", edition)
        notify_editors(settings, f"the scheduled send of {edition} did not go out", str(exc))


def daily_send(config: str | None = None) -> None:
    """The daily edition: assemble today's, freeze it (once) and send it."""
    settings = _settings(config)
    day = today(settings.schedule.zone)
    now = utc_now()
    log.info("daily edition of %s is due (policy %s)", day, settings.schedule.policy)
    try:
        with open_database(settings.database_url) as db:
            assembled = assemble(db, settings, day, now)
            for problem in assembled.problems:
                log.warning("edition of %s: %s", day, problem)
            if assembled.edition is None:
                reason = assembled.reason or "it could not be assembled"
                log.error("edition of %s not sent: %s", day, reason)
                notify_editors(settings, f"no edition sent for {day.isoformat()}", reason)
                return
            if settings.schedule.policy == "approval":
                with db.transaction() as session:
                    approved = ledger.is_approved(session, day)
                if not approved:
                    log.warning("edition of %s not approved; not sent", day)
                    notify_editors(
                        settings,
                        f"the edition of {day.isoformat()} was not approved and was not sent",
                        f"Nobody ran `digest approve {day.isoformat()}` before "
                        f"{settings.schedule.daily_at}. To send it now: "
                        f"`digest send {day.isoformat()}`.",
                    )
                    return
            frozen = freeze_assembled(db, settings, assembled, probe=True)
            if assembled.problems:
                notify_editors(
                    settings,
                    f"the edition of {day.isoformat()} went out with problems",
                    "\n".join(assembled.problems),
                )
            _deliver(db, settings, frozen.edition.label, frozen.edition, probed=frozen.created)
    except TransportError as exc:  # the relay is down, the outbox unwritable: no traceback
        log.error("edition of %s did not go out: %s", day, exc)
        notify_editors(settings, f"the edition of {day.isoformat()} did not go out", str(exc))
    except NoRecipientsError as exc:  # nothing frozen: a later send reaches those who join
        _nobody_to_send_to(settings, day.isoformat(), exc)
    except Exception as exc:  # any failure: logged and told; the service keeps running
        log.exception("daily edition of %s failed", day)
        notify_editors(settings, f"the edition of {day.isoformat()} did not go out", str(exc))


def _nobody_to_send_to(settings: Settings, edition: str, exc: NoRecipientsError) -> None:
    log.warning("edition of %s not sent: %s", edition, exc)
    notify_editors(
        settings, f"the edition of {edition} was not sent: nobody to send it to", str(exc)
    )


def daily_draft(config: str | None = None) -> None:
    """approval policy: assemble today's edition and email it to the editors as a draft."""
    settings = _settings(config)
    day = today(settings.schedule.zone)
    log.info("draft of the edition of %s is due", day)
    try:
        with open_database(settings.database_url) as db:
            assembled = assemble(db, settings, day, utc_now())
        if assembled.edition is None:
            reason = assembled.reason or "it could not be assembled"
            notify_editors(settings, f"no draft for {day.isoformat()}", reason)
            return
        send_drafts(settings, assembled.edition, list(settings.schedule.editors), "[DRAFT]")
        subject = assembled.edition.subject
        problems = "\n".join(f"- {p}" for p in assembled.problems)
        notify_editors(
            settings,
            f"draft of {day.isoformat()}: approve it to send at {settings.schedule.daily_at}",
            f"The draft of {day.isoformat()} is in your inbox, subject '[DRAFT] "
            f"{subject}'.\nTo send it at {settings.schedule.daily_at}: "
            f"`digest approve {day.isoformat()}`"
            + (f"\n\nProblems while assembling:\n{problems}" if problems else ""),
        )
        log.info(
            "draft of %s sent to %s",
            day,
            plural(len(settings.schedule.editors), "editor", "editors"),
        )
    except Exception as exc:  # any failure: logged and told; the service keeps running
        log.exception("draft of %s failed", day)
        notify_editors(settings, f"no draft for {day.isoformat()}", str(exc))


def resume_sends(config: str | None = None) -> None:
    """At start: go on with every send a stop or crash left unfinished (not paused ones)."""
    settings = _settings(config)
    with open_database(settings.database_url) as db:
        with db.transaction() as session:
            unfinished = ledger.unfinished(session, paused=False)
            session.expunge_all()
        for edition in unfinished:
            log.info("resuming the unfinished send of %s", edition.label)
            try:
                _deliver(db, settings, edition.label, edition)
            except (DigestError, AudienceError) as exc:
                log.error("could not resume %s: %s", edition.label, exc)


def _deliver(
    db: Database, settings: Settings, label: str, edition: FrozenEdition, *, probed: bool = False
) -> None:
    plan = plan_send(db, settings, edition, probed=probed)
    if plan.open_rows == 0:
        with db.transaction() as session:
            joined = ledger.newcomers(session, edition.id)
        since = (
            f"; {plural(joined, 'reader', 'readers')} joined since: "
            f"`digest send {edition.date.isoformat()} --include-new` sends it to them"
        )
        log.info(
            "edition %s: nothing left to send (already sent)%s", label, since if joined else ""
        )
        return
    result = plan.sender.run()
    log.info(
        "edition %s: %d sent, %d failed, %d skipped, %s%s",
        label,
        result.sent,
        result.failed,
        result.skipped,
        plural(result.deferred, "deferral", "deferrals"),
        f"; paused: {result.paused}" if result.paused else "",
    )
    if result.paused:
        notify_editors(settings, f"the send of {label} paused", result.paused)


def fetch_feedback(config: str | None = None) -> None:
    """Every few minutes: file what reached the contact mailbox (``feedback.imap_url``)."""
    settings = _settings(config)
    try:
        with open_database(settings.database_url) as db:
            report = Fetcher(db, settings.feedback, Filer(db, settings)).fetch(utc_now)
    except DigestError as exc:  # the mailbox is down or refuses us: try again next time
        log.error("feedback fetch failed: %s", exc)
        return
    except Exception:  # anything else: logged; the next poll tries again, the service runs on
        log.exception("feedback fetch failed")
        return
    filing = report.filing
    for warning in report.warnings:
        log.warning("feedback: %s", warning)
    for origin, reason in filing.not_stored:  # left unmarked on the server: fetched again
        log.error("feedback: NOT STORED %s: %s (fetched again next time)", origin, reason)
    if report.fetched or filing.stored:
        log.info(
            "feedback: %d fetched, %d filed (%s), %s%s",
            report.fetched,
            filing.stored,
            counted(filing.kinds),
            plural(filing.duplicates, "duplicate", "duplicates"),
            "; " + "; ".join(filing.effects) if filing.effects else "",
        )
