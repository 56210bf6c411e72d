"""A real spam filter's local rules judge the message we send (Debian's spamassassin)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from pydantic import SecretStr

from digest.cli.demo import send_demo
from digest.settings import Publication, Settings, WebSettings
from tests.helpers import ARTIFACTS, need_service

#: One row of the report's table: points, then the rule's name.
_RULE_ROW = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\b", re.MULTILINE)


def spamassassin_report(message: bytes) -> str:
    """``spamassassin -t`` on ``message`` with local tests only (no DNS, no network).

    Bayes is off so that the filter's own learning from earlier runs never changes
    the verdict; the report is kept among the test artifacts.
    """
    report = subprocess.run(
        ["spamassassin", "-L", "-t", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"],
        input=message,
        capture_output=True,
        timeout=120,
        check=False,
    ).stdout.decode("utf-8", "replace")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "spamassassin-report.txt").write_text(report)
    return report


def test_sent_edition_hits_no_scoring_rule(tmp_path: Path) -> None:
    """The example edition as sent (headers, both parts, a logo) scores 0.0: no rule adds points.

    HTML_MESSAGE (0.001, shown as 0.0) is informational: every HTML email hits it.
    The hidden preheader once cost 0.7 as HTML_FONT_LOW_CONTRAST (MJML made it white).
    """
    need_service(
        shutil.which("spamassassin") is not None,
        "spamassassin not installed (apt-get install spamassassin)",
    )
    settings = Settings(
        secret_key=SecretStr("spam-test-secret-0123456789"),
        web=WebSettings(public_url="https://list.news.example.org"),
        publication=Publication(logo_url="https://news.example.org/logo.png"),
    )
    demo = send_demo(settings, tmp_path / "demo")
    assert demo.sent == 5
    message = next((demo.outbox / "new").iterdir())
    report = spamassassin_report(message.read_bytes())
    match = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert match, report[-2000:]
    details = report.split("Content analysis details", 1)[1]
    rules = {name: float(points) for points, name in _RULE_ROW.findall(details)}
    assert "HTML_MESSAGE" in rules, details  # the table was read
    scoring = {name: points for name, points in rules.items() if points > 0}
    assert scoring == {}, details
    assert float(match.group(1)) <= 0.0, details
