"""Subscriber import: rows per second and peak memory, on SQLite and PostgreSQL.

    python benchmarks/subscribers.py                       # 100,000 rows on SQLite
    python benchmarks/subscribers.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/subscribers.py --memory 10000,1000000   # peak memory against file size

Each import runs in its own process, into a new database, from a generated CSV
(email, name and two attribute columns; about 1% of rows repeat an earlier address
in other letter case and 0.5% are invalid). Peak memory is the child's maximum
resident set size; "during import" is how far it rose above the size it had
once everything was imported and the database opened. Files over 1 MB have their
addresses checked in a second process, whose peak is printed separately.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITIES = ("Leeds", "Lagos", "Lima", "Lyon", "Lund", "Luanda")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city", "source"])
        for i in range(rows):
            if i % 200 == 199:
                writer.writerow([f"not-an-address-{i}", "", "", ""])
            elif i % 100 == 50:
                writer.writerow([f"READER.{i - 40}@EXAMPLE.ORG", f"Reader {i - 40}", "", ""])
            else:
                writer.writerow(
                    [f"reader.{i}@example.org", f"Reader {i}", CITIES[i % 6], "benchmark"]
                )


def child(url: str, csv_path: str) -> None:
    from digest.database import open_database
    from subscribers.csv_import import import_csv

    db = open_database(url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = import_csv(db, Path(csv_path), lambda: datetime.now(UTC), confirmed=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    db.close()
    print(
        json.dumps(
            {
                "rows": report.rows,
                "added": report.added,
                "updated": report.updated,
                "rejected": report.rejected,
                "seconds": seconds,
                "peak_kb": peak,
                "growth_kb": peak - before,
                "worker_kb": worker,
            }
        )
    )


def run(url: str, csv_path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(csv_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def postgres_database(admin_url: str) -> tuple[str, str]:
    """A throwaway database next to ``admin_url``'s; returns (url, name)."""
    import psycopg

    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}", name


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def line(label: str, result: dict[str, float]) -> str:
    rate = result["rows"] / result["seconds"]
    return (
        f"{label:<34} {int(result['rows']):>9,} rows  {result['seconds']:7.2f} s  "
        f"{rate:9,.0f} rows/s  peak RSS {result['peak_kb'] / 1024:6.1f} MiB  "
        f"(+{result['growth_kb'] / 1024:.1f} MiB during import)"
        + (
            f"; address-checking process peak {result['worker_kb'] / 1024:.1f} MiB"
            if result["worker_kb"]
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure")
    parser.add_argument("--memory", help="comma-separated row counts for the memory comparison")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sizes = (
            [args.rows] + [int(n) for n in args.memory.split(",")] if args.memory else [args.rows]
        )
        for rows in dict.fromkeys(sizes):
            write_csv(work / f"{rows}.csv", rows)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
        result = run(f"sqlite:///{work / 'main.db'}", work / f"{args.rows}.csv")
        print(line("SQLite import", result))
        if args.postgres:
            url, name = postgres_database(args.postgres)
            try:
                print(line("PostgreSQL import", run(url, work / f"{args.rows}.csv")))
            finally:
                drop_postgres(args.postgres, name)
        if args.memory:
            peaks = []
            for rows in [int(n) for n in args.memory.split(",")]:
                measured = run(f"sqlite:///{work / f'mem-{rows}.db'}", work / f"{rows}.csv")
                peaks.append(measured["peak_kb"])
                print(line(f"SQLite, memory at {rows:,} rows", measured))
            print(f"largest / smallest peak RSS: {max(peaks) / min(peaks):.3f}")


if __name__ == "__main__":
    main()
