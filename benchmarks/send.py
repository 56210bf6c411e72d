"""Sending: `digest send` against a bare smtplib loop, both into Postfix's `smtp-sink`.

    python benchmarks/send.py                          # 100,000 subscribers; 1, 4, 8 connections
    python benchmarks/send.py --subscribers 20000 --connections 4 --no-postgres
    python benchmarks/send.py --memory 10000,100000    # peak memory against list size
    python benchmarks/send.py --memory 10000,1000000   # ... up to a million (slow to set up)
    python benchmarks/send.py --profile --subscribers 20000   # where our time goes (cProfile)

The sink is Postfix's ``smtp-sink`` (C, accepts and discards), started here on a free
port with no mail system running; if it is missing, Debian's ``postfix`` package is
installed with its daemon forbidden to start (``policy-rc.d``), and never started.

Each measurement is a fresh process (:mod:`benchmarks.measure`). *Ours* is the whole
``digest send`` command, start to end (it freezes the edition, writes a row per
reader, sends and records every one), on SQLite and on PostgreSQL. The *limit* is a
bare stdlib ``smtplib`` loop pushing the same bytes (the edition composed once by our
composer) over the same number of reused connections, in threads of one process; and
the same loop in one process per connection, which shows the sink is not what stops
the threads (it takes more from more processes).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script, its folder would shadow the `subscribers` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.measure import ChildPeaks, peak_mib, report, run_child, table
from benchmarks.send_setup import Databases, smtp_sink

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DAY = "2017-11-02"
SECRET = "benchmark-secret-0123456789"


# ---- the children -----------------------------------------------------------------


def environment(url: str, port: int, folder: Path) -> dict[str, str]:
    from digest.edition.files import EXAMPLE_EDITION

    editions = folder / "editions"
    editions.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, editions / f"{DAY}.md")
    return {
        "DIGEST_DATABASE_URL": url,
        "DIGEST_DELIVERY_URL": f"smtp://127.0.0.1:{port}",
        "DIGEST_WEB__PUBLIC_URL": "https://list.news.example.org",  # SMTP refuses a loopback one
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_EDITIONS_DIR": str(editions),
    }


def _cpu() -> float:
    """CPU seconds of this process and its finished children (sender processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def child_ours(connections: str) -> None:
    """The whole ``digest send`` command in this process; then what the ledger says."""
    from sqlalchemy import func, select

    from digest.cli.app import main
    from digest.database import open_database
    from digest.ledger import Delivery, DeliveryStatus

    with ChildPeaks() as helpers:  # its sender processes, if it starts any
        try:
            main(["send", DAY, "--yes", "--no-wait", "--connections", connections])
        except SystemExit as exc:
            if exc.code:
                raise
    cpu = _cpu()
    db = open_database(os.environ["DIGEST_DATABASE_URL"])
    with db.transaction() as session:
        sent = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.sent))
    db.close()
    every = peak_mib() + sum(helpers.peaks_kib.values()) / 1024  # all its processes together
    report({"messages": int(sent or 0), "cpu": cpu, "peak_mib": round(every, 1)})


def example_message() -> bytes:
    """The example edition composed once by our composer: the bytes the loop sends."""
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from digest.edition.files import EXAMPLE_EDITION
    from digest.edition.parse import load_edition
    from digest.ledger import Recipient
    from digest.send.publish import draft_composer
    from digest.settings import Settings

    settings = Settings(secret_key=SecretStr(SECRET))
    composer = draft_composer(settings, load_edition(EXAMPLE_EDITION))
    recipient = Recipient(1, 1, "reader@example.org", "reader@example.org", "Reader", 0)
    return composer.compose(recipient, datetime.now(UTC)).raw


def _loop(port: int, raw: bytes, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for n in range(count):
            smtp.sendmail("bounces@news.example.org", [f"reader.{n}@example.org"], raw)


def child_loop(port: str, connections: str, messages: str, mode: str) -> None:
    """The limit: the bare loop, one reused connection per thread (or per process)."""
    raw = example_message()
    n, total = int(connections), int(messages)
    share = [total // n + (i < total % n) for i in range(n)]
    errors: list[BaseException] = []

    def run(count: int) -> None:
        try:
            _loop(int(port), raw, count)
        except BaseException as exc:
            errors.append(exc)

    cpu0, start = _cpu(), time.perf_counter()
    if mode == "threads":
        threads = [threading.Thread(target=run, args=(count,)) for count in share]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=_loop, args=(int(port), raw, c)) for c in share]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
            if process.exitcode:
                errors.append(RuntimeError(f"a loop process exited {process.exitcode}"))
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu0
    if errors:
        raise errors[0]
    report({"messages": total, "seconds": seconds, "cpu": cpu})


def child_profile(connections: str) -> None:
    """``digest send`` with every sender thread under cProfile; the top of the merged stats."""
    from digest.send import sender

    profiles: list[cProfile.Profile] = []
    work = sender.Sender._work

    def profiled(self: sender.Sender) -> None:
        clock = time.perf_counter if os.environ.get("WALL") else time.thread_time
        profile = cProfile.Profile(clock)  # CPU of this thread, not waits (WALL=1: waits too)
        profiles.append(profile)
        profile.runcall(work, self)

    sender.Sender._work = profiled  # type: ignore[method-assign]
    from digest.cli.app import main

    try:
        main(["send", DAY, "--yes", "--no-wait", "--connections", connections])
    except SystemExit as exc:
        if exc.code:
            raise
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for profile in profiles[1:]:
        stats.add(profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue(), file=sys.stderr)
    report({})


# ---- the run ----------------------------------------------------------------------


def ours(url: str, port: int, connections: int, work: Path, processes: int = 0) -> dict[str, Any]:
    env = environment(url, port, work / "ours")
    env["DIGEST_DELIVERY__PROCESSES"] = str(processes)  # 0: as digest send decides
    start = time.perf_counter()
    result = run_child("send", "ours", str(connections), env=env)
    result["seconds"] = time.perf_counter() - start  # the whole process, start to end
    return result


def our_processes(connections: int, subscribers: int) -> int:
    """How many processes `digest send` uses for this send (``delivery.processes`` unset)."""
    from digest.send.workers import process_count
    from digest.settings import DeliverySettings

    return process_count(DeliverySettings(connections=connections), subscribers)


def rate(result: dict[str, Any]) -> float:
    return float(result["messages"]) / float(result["seconds"])


def cpu_us(result: dict[str, Any]) -> str:
    return f"{float(result['cpu']) / max(1, int(result['messages'])) * 1e6:,.0f}"


def compare(args: argparse.Namespace, port: int, dbs: Databases, work: Path) -> None:
    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    rows: list[list[object]] = []
    n = args.subscribers
    for connections in [int(c) for c in args.connections.split(",")]:
        threads = run_child("send", "loop", str(port), str(connections), str(n), "threads")
        processes = run_child("send", "loop", str(port), str(connections), str(n), "processes")
        for kind in kinds:
            mine = ours(dbs.fresh(kind, n), port, connections, work)
            assert mine["messages"] == n, mine
            rows.append(
                [
                    connections,
                    kind,
                    our_processes(connections, n),
                    f"{rate(mine):,.0f}",
                    f"{rate(threads):,.0f}",
                    f"{rate(mine) / rate(threads):.2f}",
                    f"{rate(processes):,.0f}",
                    f"{cpu_us(mine)} / {cpu_us(threads)}",
                    mine["peak_mib"],
                ]
            )
        print(f"  {connections} connection(s) done", file=sys.stderr, flush=True)
    header = [
        "conn.",
        "database",
        "our processes",
        "digest send msg/s",
        "loop, threads msg/s",
        "ours / loop",
        "loop, processes msg/s",
        "CPU µs/msg ours / loop",
        "our peak MiB (all processes)",
    ]
    print(f"\n{n:,} subscribers, the example edition ({len(example_message()):,} bytes):\n")
    print(table(header, rows))
    if not args.no_postgres and args.shared:
        shared(port, dbs, work, n)


def shared(port: int, dbs: Databases, work: Path, n: int) -> None:
    """Two ``digest send`` processes sharing one send on PostgreSQL, against one."""
    from concurrent.futures import ThreadPoolExecutor

    one = ours(dbs.fresh("postgresql", n), port, 4, work, processes=1)
    url = dbs.fresh("postgresql", n)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: ours(url, port, 4, work, processes=1), range(2)))
    seconds = time.perf_counter() - start
    sent = both[0]["messages"]  # each child counts the whole ledger at its end
    print(f"\nPostgreSQL, {n:,} subscribers, two `digest send` of one process and 4 connections:\n")
    print(
        table(
            ["senders", "msg/s", "rows sent in the ledger"],
            [[1, f"{rate(one):,.0f}", one["messages"]], [2, f"{sent / seconds:,.0f}", sent]],
        )
    )


def memory(args: argparse.Namespace, port: int, dbs: Databases, work: Path) -> None:
    rows: list[list[object]] = []
    for size in sorted(int(s) for s in args.memory.split(",")):
        mine = ours(dbs.fresh("sqlite", size), port, 4, work)
        rows.append([f"{size:,}", our_processes(4, size), f"{rate(mine):,.0f}", mine["peak_mib"]])
    print("\nPeak memory of `digest send` (SQLite, 4 connections):\n")
    header = ["subscribers", "processes", "msg/s", "peak MiB (VmHWM, all processes)"]
    print(table(header, rows))
    peaks = [float(row[3]) for row in rows]  # type: ignore[arg-type]
    print(f"largest / smallest peak: {max(peaks) / min(peaks):.2f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        kind, *rest = sys.argv[2:]
        children: dict[str, Callable[..., None]] = {
            "ours": child_ours,
            "loop": child_loop,
            "profile": child_profile,
        }
        children[kind](*rest)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--connections", default="1,4,8")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL (databases made here)")
    parser.add_argument("--no-shared", dest="shared", action="store_false")
    parser.add_argument("--memory", help="comma-separated list sizes: peak memory only")
    parser.add_argument("--profile", action="store_true", help="cProfile of the sender threads")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; sink: Postfix smtp-sink")
    with tempfile.TemporaryDirectory() as tmp, smtp_sink() as port:
        work = Path(tmp)
        dbs = Databases(work, None if args.no_postgres else args.postgres)
        try:
            if args.profile:
                url = dbs.fresh("sqlite", args.subscribers)
                env = environment(url, port, work / "profile")
                env["DIGEST_DELIVERY__PROCESSES"] = "1"  # the profile covers this process only
                run_child("send", "profile", args.connections.split(",")[0], env=env)
            elif args.memory:
                memory(args, port, dbs, work)
            else:
                compare(args, port, dbs, work)
        finally:
            if not args.no_postgres:
                dbs.drop_all()


if __name__ == "__main__":
    main()
