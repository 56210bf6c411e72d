"""Sending: messages per second, CPU per message and peak memory, against the blast limit.

    python benchmarks/send.py                        # 100,000 subscribers; 1, 4, 8 connections
    python benchmarks/send.py --subscribers 10000 --connections 4
    python benchmarks/send.py --memory 10000,100000  # peak memory against list size

An SMTP sink (aiosmtpd, accepting and discarding) runs in its own process on
localhost. Each measurement runs in a fresh process: ``digest``'s sender on a
SQLite database of N active subscribers (every message composed, recorded in the
ledger one by one), and, beside it, the *blast*: the same number of identical,
pre-built messages pushed over the same number of connections by a bare smtplib
loop, which is as fast as that sink can take mail. The ratio says what our
bookkeeping costs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sink(port: int, ready: Any) -> None:
    """The SMTP sink process: accept every message, keep nothing."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok: discarded"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


def make_database(path: Path, subscribers: int) -> None:
    from datetime import UTC, datetime

    from digest.database import open_database
    from subscribers.csv_import import import_csv

    csv_path = path.with_suffix(".csv")
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("email,name\n")
        for i in range(subscribers):
            handle.write(f"reader.{i}@example.org,Reader {i}\n")
    db = open_database(f"sqlite:///{path}")
    import_csv(db, csv_path, lambda: datetime.now(UTC), confirmed=True)
    db.close()
    csv_path.unlink()


def ours(database: str, port: int, connections: int) -> dict[str, float]:
    from pydantic import SecretStr

    from digest.database import open_database
    from digest.edition.files import EXAMPLE_EDITION
    from digest.send.publish import freeze_file, plan_send
    from digest.settings import DeliverySettings, Settings, WebSettings

    settings = Settings(
        database_url=f"sqlite:///{database}",
        delivery_url=SecretStr(f"smtp://127.0.0.1:{port}"),
        secret_key=SecretStr("benchmark-secret-0123456789"),
        delivery=DeliverySettings(connections=connections),
        web=WebSettings(public_url="https://list.news.example.org"),  # SMTP refuses a loopback one
    )
    db = open_database(settings.database_url)
    frozen = freeze_file(db, settings, EXAMPLE_EDITION)
    plan = plan_send(db, settings, frozen.edition)
    cpu0, start = time.process_time(), time.perf_counter()
    result = plan.sender.run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    db.close()
    return {"messages": result.sent, "seconds": seconds, "cpu": cpu, "peak_kb": _peak()}


def blast(port: int, connections: int, messages: int) -> dict[str, float]:
    """One pre-built message, sent again and again over ``connections`` sessions: the limit.

    It is the example edition composed once by our composer, so it is the same size
    and shape as what ``digest send`` sends.
    """
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from digest.edition.files import EXAMPLE_EDITION
    from digest.edition.parse import load_edition
    from digest.ledger import Recipient
    from digest.send.publish import draft_composer
    from digest.settings import Settings

    settings = Settings(secret_key=SecretStr("benchmark-secret-0123456789"))
    composer = draft_composer(settings, load_edition(EXAMPLE_EDITION))
    recipient = Recipient(1, 1, "reader@example.org", "reader@example.org", "Reader", 0)
    raw = composer.compose(recipient, datetime.now(UTC)).raw
    share = [messages // connections + (i < messages % connections) for i in range(connections)]
    errors: list[BaseException] = []

    def run(count: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for n in range(count):
                    smtp.sendmail("bounces@news.example.org", [f"reader.{n}@example.org"], raw)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(count,)) for count in share]
    cpu0, start = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    if errors:
        raise errors[0]
    return {"messages": messages, "seconds": seconds, "cpu": cpu, "peak_kb": _peak()}


def _peak() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child(kind: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def line(label: str, result: dict[str, float]) -> str:
    rate = result["messages"] / result["seconds"]
    return (
        f"{label:<26} {int(result['messages']):>8,} msgs {result['seconds']:7.1f} s "
        f"{rate:8,.0f} msg/s  CPU {result['cpu'] / result['messages'] * 1e6:6.0f} µs/msg  "
        f"peak RSS {result['peak_kb'] / 1024:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--connections", default="1,4,8")
    parser.add_argument("--memory", help="comma-separated list sizes to compare peak memory")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ours":
            result = ours(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = blast(int(rest[0]), int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=sink, args=(port, ready), daemon=True)
    server.start()
    ready.wait(30)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; sink: aiosmtpd, own process")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            sizes = {args.subscribers}
            if args.memory:
                sizes |= {int(n) for n in args.memory.split(",")}
            for size in sorted(sizes):
                make_database(work / f"base-{size}.db", size)
            n = args.subscribers
            for connections in [int(c) for c in args.connections.split(",")]:
                database = work / f"run-{connections}.db"
                shutil.copy(work / f"base-{n}.db", database)
                mine = child("ours", str(database), str(port), str(connections))
                limit = child("blast", str(port), str(connections), str(n))
                print(line(f"digest send, {connections} conn.", mine))
                print(line(f"smtplib blast, {connections} conn.", limit))
                ratio = (mine["messages"] / mine["seconds"]) / (
                    limit["messages"] / limit["seconds"]
                )
                print(f"  ours / blast: {ratio:.2f}")
            if args.memory:
                peaks = []
                for size in sorted(int(s) for s in args.memory.split(",")):
                    database = work / f"mem-{size}.db"
                    shutil.copy(work / f"base-{size}.db", database)
                    measured = child("ours", str(database), str(port), "4")
                    peaks.append(measured["peak_kb"])
                    print(line(f"memory, {size:,} subscribers", measured))
                print(f"largest / smallest peak RSS: {max(peaks) / min(peaks):.3f}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
