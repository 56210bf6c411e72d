"""Filing readers' mail from a Maildir: messages per second and peak memory.

    python benchmarks/feedback.py                        # 10,000 messages on SQLite
    python benchmarks/feedback.py --messages 20000 --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/feedback.py --memory 2000,20000    # peak memory against the count
    python benchmarks/feedback.py --worst                # also the hostile messages, one by one

The edition of 2017-11-02 is first sent (to the maildir outbox) to 1,000
subscribers, so the mail filed links to real deliveries. The Maildir holds, in
a fixed mix: plain-text replies with a quoted original and a signature (60%),
HTML-only replies with a quoted block (10%), story suggestions (5%), vacation
auto replies (10%), RFC 3464 bounces returning our headers (10%) and mail from
strangers (5%). Each run is its own process into a new database
(``benchmarks.measure.run_child``); memory is read from /proc: "RSS at start" is its
resident size before filing began (libraries loaded, database opened), "RSS filing
max" the largest resident size sampled after each batch of 200 messages.

The limit, in the same run on the same Maildir: the standard library alone reads it
(``mailbox``), parses each message (``email``, compat32), decodes its first part and
inserts a row (Message-ID, sender, subject, body) by one ``executemany``.

``--worst`` then files, each alone, the hostile messages of issue 14: a Subject
of 300,000 encoded words, a report of 250,000 recipient blocks, a 38.7 MB
HTML-only message, a Content-Type of 400,000 parameters. Beside each, a thread
signs readers up on the same database as the web form does: "longest" is the
longest such transaction took (how long filing held the write lock, at most).
"RSS peak" is the process's high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import report, rss_kib, run_child, table  # noqa: E402

SUBSCRIBERS = 1000
SECRET = "benchmark-secret-0123456789"


def _reply(rng: random.Random, n: int, mid: str, sender: str) -> str:
    quoted = "\n".join(
        f"> Paragraph {i} of the briefing about the harbour, the budget and the ferries."
        for i in range(rng.randint(5, 30))
    )
    return (
        f"From: Reader <{sender}>\nTo: desk@news.example.org\n"
        f"Subject: Re: Executive Summary for November 2nd\nMessage-ID: <r{n}@mail.example.com>\n"
        f"In-Reply-To: {mid}\nReferences: {mid}\nDate: Thu, 2 Nov 2017 09:00:00 +0000\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        f"Thank you for item {n}; the ferry piece was the clearest yet.\n\n-- \nA Reader\n\n"
        f"On Thu, 2 Nov 2017 at 07:00, The Morning Ledger <desk@news.example.org> wrote:\n{quoted}\n"
    )


def _html(n: int, mid: str, sender: str) -> str:
    return (
        f"From: {sender}\nTo: desk@news.example.org\nSubject: RE: Executive Summary for "
        f"November 2nd\nMessage-ID: <h{n}@outlook.example.com>\nIn-Reply-To: {mid}\n"
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        f"<html><body><div>Agreed on point {n}.</div><div id=divRplyFwdMsg><b>From:</b> "
        "The Morning Ledger<br><b>Sent:</b> Thursday<br></div><blockquote><p>The "
        "briefing text quoted back.</p></blockquote></body></html>\n"
    )


def _bounce(n: int, mid: str, address: str) -> str:
    return (
        f"From: MAILER-DAEMON@mx.example.net\nTo: bounces@news.example.org\n"
        f"Message-ID: <bounce{n}@mx.example.net>\nSubject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThe mail system could not deliver your message.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 4.2.2\n"
        "Diagnostic-Code: smtp; 452 4.2.2 mailbox full\n\n"
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {mid}\n\n--B--\n"
    )


def write_maildir(folder: Path, count: int, message_ids: list[tuple[str, str]]) -> int:
    rng = random.Random(20171102)
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    size = 0
    for n in range(count):
        mid, address = message_ids[rng.randrange(len(message_ids))]
        pick = rng.random()
        if pick < 0.60:
            text = _reply(rng, n, mid, address)
        elif pick < 0.70:
            text = _html(n, mid, address)
        elif pick < 0.75:
            text = (
                f"From: {address}\nTo: desk@news.example.org\nSubject: Story suggestion\n"
                f"Message-ID: <s{n}@example.com>\n\nLook into the lighthouse lease, please.\n"
            )
        elif pick < 0.85:
            text = (
                f"From: {address}\nTo: desk@news.example.org\nAuto-Submitted: auto-replied\n"
                f"Subject: Automatic reply: Executive Summary\nMessage-ID: <a{n}@example.com>\n"
                f"In-Reply-To: {mid}\n\nI am away until Monday.\n"
            )
        elif pick < 0.95:
            text = _bounce(n, mid, address)
        else:
            text = (
                f"From: stranger{n}@example.com\nTo: desk@news.example.org\nSubject: Hello\n"
                f"Message-ID: <o{n}@example.com>\n\nDo you sell advertising?\n"
            )
        raw = text.encode("utf-8")
        size += len(raw)
        (folder / "new" / f"{1509606000 + n}.M{n}P1.bench").write_bytes(raw)
    return size


def prepare(url: str, work: Path) -> list[tuple[str, str]]:
    """Subscribers and one sent edition; returns (Message-ID, address) of each delivery."""
    from sqlalchemy import select

    from digest.database import open_database
    from digest.edition.files import EXAMPLE_EDITION
    from digest.ledger import Delivery
    from digest.send.publish import freeze_source, plan_send
    from subscribers.csv_import import import_csv
    from subscribers.models import Subscriber

    (work / "editions").mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, work / "editions" / "2017-11-02.md")
    settings = settings_for(url, work)
    csv_path = work / "readers.csv"
    csv_path.write_text(
        "email\n" + "".join(f"reader.{i}@example.org\n" for i in range(SUBSCRIBERS)),
        encoding="utf-8",
    )
    with open_database(url) as db:
        import_csv(db, csv_path, lambda: datetime.now(UTC), confirmed=True)
        frozen = freeze_source(db, settings, "2017-11-02")
        plan_send(db, settings, frozen.edition).sender.run()
        with db.transaction() as session:
            rows = session.execute(
                select(Delivery.message_id, Subscriber.email).join(
                    Subscriber, Subscriber.id == Delivery.subscriber_id
                )
            ).all()
    return [(str(mid), str(email)) for mid, email in rows]


#: What a filing process measured (seconds, stored, kinds, before_kib, filing_kib), and
#: the size of the Maildir it filed (bytes).
Result = dict[str, Any]


def settings_for(url: str, work: Path) -> Settings:
    from pydantic import SecretStr

    from digest.settings import Settings

    return Settings(
        database_url=url,
        delivery_url=SecretStr(f"maildir:{work / 'outbox'}"),
        secret_key=SecretStr(SECRET),
        editions_dir=work / "editions",
    )


def child(url: str, work: str, maildir: str) -> None:
    from digest.database import open_database
    from digest.feedback.sources import FileSource
    from digest.feedback.store import Filer

    settings = settings_for(url, Path(work))
    with open_database(url) as db:
        filer = Filer(db, settings)
        before = rss_kib()
        sampled = [before]
        start = time.perf_counter()
        filed = filer.file(FileSource(Path(maildir)), progress=lambda _: sampled.append(rss_kib()))
        seconds = time.perf_counter() - start
    report({"seconds": seconds, "stored": filed.stored, "kinds": dict(filed.kinds),
            "before_kib": before, "filing_kib": max(sampled)})  # fmt: skip


def child_bare(url: str, maildir: str) -> None:
    """The limit: the stdlib's fastest parse, first part decoded, one executemany."""
    import email
    import mailbox

    before = rss_kib()
    start = time.perf_counter()
    rows = []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    for key in box.iterkeys():
        message = email.message_from_bytes(box.get_bytes(key))
        text = next(
            (part.get_payload(decode=True) for part in message.walk() if not part.is_multipart()),
            b"",
        )
        rows.append((message["Message-ID"], message["From"], message["Subject"], str(text)))
    _store_bare(url, rows)
    seconds = time.perf_counter() - start
    report({"seconds": seconds, "stored": len(rows), "kinds": {}, "before_kib": before,
            "filing_kib": rss_kib("VmHWM")})  # fmt: skip


def _store_bare(url: str, rows: list[tuple[Any, ...]]) -> None:
    create = "CREATE TABLE bare (message_id text, sender text, subject text, body text)"
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.execute(create)
            connection.executemany("INSERT INTO bare VALUES (?, ?, ?, ?)", rows)
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute(create)
        connection.cursor().executemany("INSERT INTO bare VALUES (%s, %s, %s, %s)", rows)


def worst_cases() -> dict[str, bytes]:
    """The hostile messages, built here: none of them lives in git."""
    from tests.helpers import encoded_word_subject, html_only_reply, many_recipient_report

    params = "; a=b" * 400_000
    content_type = (
        f"From: stranger@example.com\nSubject: parameters\nMessage-ID: <ct@example.com>\n"
        f'Content-Type: multipart/mixed{params}; boundary="B"\n\n--B\n\nhello\n--B--\n'
    ).encode()
    return {
        "Subject: 300,000 encoded words": encoded_word_subject(300_000),
        "report: 250,000 recipients": many_recipient_report(250_000),
        "HTML only, 38.7 MB": html_only_reply(38.7),
        "Content-Type: 400,000 params": content_type,
    }


def child_worst(url: str, work: str, eml: str) -> None:
    """File one message while a thread signs readers up; print what it measured."""
    from sqlalchemy import select

    from digest.database import open_database
    from digest.feedback.models import Feedback
    from digest.feedback.sources import FileSource
    from digest.feedback.store import Filer
    from subscribers import audience
    from subscribers.addresses import parse_address
    from subscribers.models import ConsentMethod

    settings = settings_for(url, Path(work))
    stop, waits, refused = threading.Event(), [0.0], list[float]()  # seconds each took

    def sign_ups() -> None:
        with open_database(url) as other:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    with other.transaction() as session:
                        audience.join(
                            session,
                            parse_address(f"signup.{len(waits)}.{Path(eml).stem}@example.com"),
                            datetime.now(UTC),
                            audience.ConsentEvidence(ConsentMethod.editor),
                        )
                except Exception:  # "database is locked": the form would answer 500
                    refused.append(time.perf_counter() - began)
                waits.append(time.perf_counter() - began)

    with open_database(url) as db:
        filer, before = Filer(db, settings), rss_kib()
        writer = threading.Thread(target=sign_ups)
        writer.start()
        start = time.perf_counter()
        filer.file(FileSource(Path(eml)))
        seconds = time.perf_counter() - start
        stop.set()
        writer.join()
        with db.transaction() as session:
            row = session.scalars(select(Feedback).order_by(Feedback.id.desc())).first()
            kind, problem = (row.kind or "", row.problem or "") if row else ("", "")
    peak, signups, longest = rss_kib("VmHWM"), len(waits) - 1, max(waits)
    report({"seconds": seconds, "kind": kind, "problem": problem, "before_kib": before,
            "peak_kib": peak, "signups": signups, "refused": len(refused),
            "longest_signup": longest})  # fmt: skip


def run_worst() -> None:
    work = Path(tempfile.mkdtemp(prefix="digest-feedback-worst-"))
    lines: list[list[object]] = []
    try:
        url = f"sqlite:///{work / 'bench.db'}"
        prepare(url, work)
        for number, (name, raw) in enumerate(worst_cases().items()):
            eml = work / f"worst-{number}.eml"
            eml.write_bytes(raw)
            result = run_child("feedback", "worst", url, str(work), str(eml))
            lines.append(
                [
                    name,
                    f"{len(raw) / 1e6:.1f}",
                    f"{result['seconds']:.2f}",
                    f"{result['before_kib'] / 1024:.0f}",
                    f"{result['peak_kib'] / 1024:.0f}",
                    f"{result['signups']:,}",
                    result["refused"],
                    f"{result['longest_signup']:.2f}",
                    f"{result['kind']}: {result['problem'][:70]}",
                ]
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ["worst case", "MB", "seconds", "RSS start MiB", "RSS peak MiB", "sign-ups"]
    print(table([*header, "refused", "longest s", "filed as"], lines))


def run_one(count: int, postgres: str | None) -> tuple[Result, Result]:
    """Ours, then the limit, filing the same Maildir of ``count`` messages."""
    work = Path(tempfile.mkdtemp(prefix="digest-feedback-bench-"))
    try:
        if postgres:
            from tests.databases import fresh_postgres

            context = fresh_postgres(postgres)
            url = context.__enter__()
        else:
            url, context = f"sqlite:///{work / 'bench.db'}", None
        try:
            ids = prepare(url, work)
            size = write_maildir(work / "Maildir", count, ids)
            ours = run_child("feedback", "file", url, str(work), str(work / "Maildir"))
            bare_url = url if postgres else f"sqlite:///{work / 'bare.db'}"
            bare = run_child("feedback", "bare", bare_url, str(work / "Maildir"))
            return {**ours, "bytes": size}, {**bare, "bytes": size}
        finally:
            if context is not None:
                context.__exit__(None, None, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _line(name: str, what: str, count: int, result: Result) -> list[object]:
    return [
        name,
        what,
        f"{count:,}",
        f"{result['bytes'] / 1e6:.1f}",
        f"{result['stored'] / result['seconds']:,.0f}",
        f"{result['before_kib'] / 1024:.1f}",
        f"{result['filing_kib'] / 1024:.1f}",
        result["kinds"] or "",
    ]


CHILDREN: dict[str, Callable[..., None]] = {"file": child, "worst": child_worst, "bare": child_bare}


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        CHILDREN[sys.argv[2]](*sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--postgres", help="also run on this PostgreSQL server")
    parser.add_argument("--memory", help="comma-separated counts to compare peak memory")
    parser.add_argument("--worst", action="store_true", help="also file the hostile messages")
    args = parser.parse_args()
    runs = [("SQLite", None, args.messages)]
    if args.postgres:
        runs.append(("PostgreSQL", args.postgres, args.messages))
    for count in [int(c) for c in args.memory.split(",")] if args.memory else []:
        runs.append(("SQLite", None, count))
    lines = []
    for name, server, count in runs:
        ours, bare = run_one(count, server)
        lines += [_line(name, "ours", count, ours), _line(name, "limit: stdlib", count, bare)]
    header = ["database", "what", "messages", "MB", "msg/s", "RSS at start MiB"]
    print(table([*header, "RSS filing max MiB", "kinds"], lines))
    if args.worst:
        run_worst()


if __name__ == "__main__":
    main()
