"""Scheduler overhead: due time → first message at the SMTP server; idle memory of `digest run`.

    python benchmarks/schedule.py                 # 20 scheduled sends
    python benchmarks/schedule.py --editions 5 --lead 20   # fewer, further ahead

A real `digest run --no-web` process on a SQLite database with 50 active
subscribers sends to an SMTP server (aiosmtpd) in this process, which notes when
each edition's first message arrives. Each edition is scheduled from the command
line (`digest schedule DATE --at …`) a few seconds ahead, as an editor would, so
the figure includes the service noticing a job another process wrote. Idle
memory is the service's resident set size (VmRSS, /proc) after it has started and waited.

The limit, measured in the same run: a bare ``smtplib`` send of a message to the
same server by a process that slept until the due time (nothing of ours: no
database, no scheduler, no rendering), and the resident size of a bare Python
interpreter waiting (``python -m benchmarks.schedule child idle``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import median, report, rss_kib, run_child, table  # noqa: E402

EDITIONS = 20
#: Seconds between scheduling an edition and its due time (a busy machine needs more).
LEAD = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_idle() -> None:
    """The limit for idle memory: a bare interpreter, started and waiting."""
    time.sleep(2)
    report({"idle_mib": round(rss_kib() / 1024, 1)})


def bare_sends(port: int, first_seen: dict[str, float], count: int) -> list[float]:
    """The limit for the delay: sleep until a due time, then send with smtplib."""
    delays = []
    for n in range(count):
        due = time.time() + 1
        time.sleep(max(0.0, due - time.time()))
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail(
                "bench@example.org",
                ["reader@example.org"],
                f"Message-ID: <bare{n}.x@example.org>\r\nSubject: bare\r\n\r\nhello\r\n",
            )
        deadline = time.time() + 10
        while f"bare{n}" not in first_seen and time.time() < deadline:
            time.sleep(0.001)
        delays.append(first_seen[f"bare{n}"] - due)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editions", type=int, default=EDITIONS, help="scheduled sends")
    parser.add_argument("--lead", type=int, default=LEAD, help="seconds ahead each is due")
    args = parser.parse_args()
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
        days = [date(2017, 11, 2) + timedelta(days=n) for n in range(args.editions)]
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
            idle = rss_kib("VmRSS", service.pid) / 1024
            due: dict[str, float] = {}
            for index, day in enumerate(days):
                at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.lead)
                done = subprocess.run(
                    [*command, "schedule", day.isoformat(), "--at", at.isoformat()],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    raise RuntimeError(f"digest schedule failed:\n{done.stdout}{done.stderr}")
                due[f"{day:%Y%m%d}"] = at.timestamp()
                deadline = time.time() + 60
                while f"{day:%Y%m%d}" not in first_seen and time.time() < deadline:
                    time.sleep(0.01)
                print(f"  {index + 1:2d}/{args.editions} {day}", end="\r", flush=True)
            print()
            delays = [first_seen[d] - due[d] for d in due if d in first_seen]
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        try:
            bare = bare_sends(port, first_seen, args.editions)
        finally:
            controller.stop()
        shutil.rmtree(work / "editions", ignore_errors=True)
    bare_idle = run_child("schedule", "idle")["idle_mib"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {len(delays)} sends")
    ms = [[f"{f(v) * 1000:.0f}" for f in (median, min, max)] for v in (delays, bare)]
    rows: list[list[object]] = [
        ["due → first message at the SMTP server (ms)", *ms[0], *ms[1]],
        ["idle resident memory (MiB)", f"{idle:.1f}", "", "", f"{bare_idle:.1f}", "", ""],
    ]
    header = ["", "ours median", "min", "max", "limit median", "min", "max"]
    print(table(header, rows))
    print("limit: a bare smtplib send after sleeping until the due time; a bare interpreter")


if __name__ == "__main__":
    if sys.argv[1:3] == ["child", "idle"]:
        child_idle()
    else:
        main()
