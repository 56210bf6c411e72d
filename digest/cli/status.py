"""``digest status``: where the send of one edition stands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from digest.cli.options import ConfigOption, FormatOption, OutputFormat, console, write_report
from digest.cli.send import SourceArgument
from digest.words import plural


def status(
    source: SourceArgument,
    fmt: FormatOption = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Counts by state, failures with reasons, and the time left while sending."""
    from rich.table import Table

    from digest import ledger
    from digest.clock import utc_now
    from digest.database import open_database
    from digest.feedback.query import counts_for_edition
    from digest.ledger import DeliveryStatus
    from digest.ledger.lookup import frozen_for
    from digest.settings import load_settings

    settings = load_settings(config)
    with open_database(settings.database_url) as db:
        edition = frozen_for(db, source)
        now = utc_now()
        with db.transaction() as session:
            counts = ledger.counts(session, edition.id)
            failures = ledger.failures(session, edition.id)
            recent = ledger.sent_since(session, edition.id, now - timedelta(minutes=1))
            drew = counts_for_edition(session, edition.date)
    remaining = sum(counts[s] for s in ledger.OPEN)
    rate = recent / 60.0
    eta = remaining / rate if rate and remaining else None
    data: dict[str, Any] = {
        "edition": edition.date.isoformat(),
        "version": edition.version,
        "subject": edition.subject,
        "frozen_at": edition.frozen_at.isoformat(),
        "paused": edition.pause_reason if edition.paused_at else None,
        "total": sum(counts.values()),
        "counts": {s.value: counts[s] for s in DeliveryStatus},
        "rate_per_second": round(rate, 2),
        "eta_seconds": round(eta) if eta is not None else None,
        "failures": [
            {"email": email, "status": state, "reply": reply} for email, state, reply in failures
        ],
        "feedback": drew,
    }
    if write_report(data, fmt):
        return
    out = console()
    out.print(f"{edition.label}: {edition.subject}", markup=False)
    if data["paused"]:
        out.print(f"PAUSED: {data['paused']}", markup=False)
    table = Table("state", "deliveries")
    for kind in DeliveryStatus:
        table.add_row(kind.value, f"{counts[kind]:,}")
    table.add_row("total", f"{data['total']:,}")
    out.print(table)
    if eta is not None:
        out.print(f"sending at {rate:,.1f}/s; about {timedelta(seconds=round(eta))} left")
    out.print(
        "readers' mail: "
        + ", ".join(plural(drew[kind], one, more) for kind, one, more in _DREW)
        + (
            f" (and {plural(drew['auto_reply'], 'auto reply', 'auto replies')})"
            if drew["auto_reply"]
            else ""
        ),
        markup=False,
    )
    if failures:
        problems = Table("email", "state", "reply")
        for row in failures:
            problems.add_row(*row)
        out.print(problems)


_DREW = (
    ("reply", "reply", "replies"),
    ("suggestion", "suggestion", "suggestions"),
    ("bounce", "bounce", "bounces"),
    ("complaint", "complaint", "complaints"),
    ("unsubscribe", "unsubscribe by email", "unsubscribes by email"),
)
