"""Scheduler overhead: due time → first message at the SMTP server; idle memory of `digest run`.

    python benchmarks/schedule.py            # 20 scheduled sends

A real `digest run --no-web` process on a SQLite database with 50 active
subscribers sends to an SMTP server (aiosmtpd) in this process, which notes when
each edition's first message arrives. Each edition is scheduled from the command
line (`digest schedule DATE --at …`) a few seconds ahead, as an editor would, so
the figure includes the service noticing a job another process wrote. Idle
memory is the service's resident set size after it has started and waited.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EDITIONS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from aiosmtpd.controller import Controller

    from digest.database import open_database
    from digest.edition.files import EXAMPLE_EDITION
    from subscribers.csv_import import import_csv

    first_seen: dict[str, float] = {}

    class Timing:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            for line in envelope.content.splitlines():
                if line.lower().startswith(b"message-id: <"):
                    day = line.split(b"<")[1].split(b".")[0].decode()
                    first_seen.setdefault(day, time.time())
                    break
            return "250 OK"

    port = free_port()
    controller = Controller(Timing(), hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        editions = work / "editions"
        editions.mkdir()
        text = EXAMPLE_EDITION.read_text()
        days = [date(2017, 11, 2) + timedelta(days=n) for n in range(EDITIONS)]
        for day in days:
            (editions / f"{day}.md").write_text(
                text.replace("date: 2017-11-02", f"date: {day.isoformat()}")
            )
        db_url = f"sqlite:///{work / 'digest.db'}"
        db = open_database(db_url)
        readers = work / "readers.csv"
        readers.write_text("email\n" + "".join(f"r{i}@example.org\n" for i in range(50)))
        import_csv(db, readers, lambda: datetime.now(UTC), confirmed=True)
        db.close()
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_DELIVERY_URL": f"smtp://127.0.0.1:{port}",
            "DIGEST_WEB__PUBLIC_URL": "https://list.news.example.org",  # SMTP refuses loopback
            "DIGEST_SECRET_KEY": "benchmark-secret-0123456789",
            "DIGEST_EDITIONS_DIR": str(editions),
        }
        command = [sys.executable, "-c", "from digest.cli.app import main; main()"]
        service = subprocess.Popen(
            [*command, "run", "--no-web"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(5)
            idle = rss_mib(service.pid)
            due: dict[str, float] = {}
            for index, day in enumerate(days):
                at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
                subprocess.run(
                    [*command, "schedule", day.isoformat(), "--at", at.isoformat()],
                    cwd=work,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                due[f"{day:%Y%m%d}"] = at.timestamp()
                deadline = time.time() + 60
                while f"{day:%Y%m%d}" not in first_seen and time.time() < deadline:
                    time.sleep(0.01)
                print(f"  {index + 1:2d}/{EDITIONS} {day}", end="\r", flush=True)
            print()
            delays = [first_seen[d] - due[d] for d in due if d in first_seen]
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
            controller.stop()
        shutil.rmtree(work / "editions", ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"`digest run --no-web` idle resident memory: {idle:.1f} MiB")
    print(
        f"due time → first message at the SMTP server, {len(delays)} sends: "
        f"median {statistics.median(delays) * 1000:.0f} ms, "
        f"min {min(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
