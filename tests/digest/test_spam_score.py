"""A real spam filter's local rules judge the message we send (Debian's spamassassin)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from pydantic import SecretStr

from digest.cli.demo import send_demo
from digest.settings import Settings, WebSettings
from tests.helpers import ARTIFACTS, need_service

#: SpamAssassin flags mail at 5.0; ours should be nowhere near.
MAX_SCORE = 1.5


def test_sent_edition_scores_near_zero(tmp_path: Path) -> None:
    """The example edition as sent (headers, both parts) scores well under the threshold."""
    need_service(
        shutil.which("spamassassin") is not None,
        "spamassassin not installed (apt-get install spamassassin)",
    )
    settings = Settings(
        secret_key=SecretStr("spam-test-secret-0123456789"),
        web=WebSettings(public_url="https://list.news.example.org"),
    )
    demo = send_demo(settings, tmp_path / "demo")
    sent, outbox = demo.sent, demo.outbox
    assert sent == 5
    message = next((outbox / "new").iterdir())
    report = subprocess.run(
        ["spamassassin", "-L", "-t"],
        input=message.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    ).stdout.decode("utf-8", "replace")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "spamassassin-report.txt").write_text(report)
    match = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert match, report[-2000:]
    assert float(match.group(1)) < MAX_SCORE, report.split("Content analysis details")[-1]
