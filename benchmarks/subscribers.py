"""Subscriber import: rows per second and peak memory, beside the engine's bare limit.

    python benchmarks/subscribers.py                       # 100,000 rows on SQLite
    python benchmarks/subscribers.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/subscribers.py --memory 10000,1000000   # peak memory against file size

Each import runs in its own process (``benchmarks.measure.run_child``), into a new
database, from a generated CSV (email, name and two attribute columns; about 1% of
rows repeat an earlier address in other letter case and 0.5% are invalid). Beside
each, the limit, measured in the same run from the same file: on SQLite a bare
``executemany`` INSERT of the rows into a plain table, on PostgreSQL a bare ``COPY``
of them into a plain table (the ``csv`` module reading the file, nothing of ours:
no checking, no duplicates, no history, no consent rows). Peak memory is the
process's VmHWM from /proc; "growth" how far it rose during the import; files over
1 MB have their addresses checked in a second process, whose peak is shown apart.
"client CPU s" is the CPU time of the measuring process and that checker (not the
database server's): steadier than seconds on a machine busy with other work.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import ChildPeaks, peak_mib, report, rss_kib, run_child, table  # noqa: E402

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


def _rows(csv_path: str) -> csv.DictReader[str]:
    return csv.DictReader(open(csv_path, encoding="utf-8", newline=""))


def _cpu() -> float:
    """CPU seconds of this process and its ended children (the address checker)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def child_ours(url: str, csv_path: str) -> None:
    from digest.database import open_database
    from subscribers.csv_import import import_csv

    db = open_database(url)
    before = rss_kib()
    with ChildPeaks() as workers:
        start, cpu = time.perf_counter(), _cpu()
        done = import_csv(db, Path(csv_path), lambda: datetime.now(UTC), confirmed=True)
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    db.close()
    report(
        {
            "rows": done.rows,
            "seconds": seconds,
            "cpu": cpu,
            "growth_mib": round(peak_mib() - before / 1024, 1),
            "worker_mib": round(workers.peak_mib(), 1),
        }
    )


def child_sqlite_insert(path: str, csv_path: str) -> None:
    """The SQLite limit: one executemany INSERT of every row into a plain table."""
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE bare (email TEXT, name TEXT, city TEXT, source TEXT)")
    start, cpu = time.perf_counter(), _cpu()
    with connection:
        cursor = connection.executemany(
            "INSERT INTO bare VALUES (:email, :name, :city, :source)", _rows(csv_path)
        )
    seconds = time.perf_counter() - start
    report({"rows": cursor.rowcount, "seconds": seconds, "cpu": _cpu() - cpu})


def child_copy(url: str, csv_path: str) -> None:
    """The PostgreSQL limit: a bare COPY of every row into a plain table."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("CREATE TABLE bare (email text, name text, city text, source text)")
        connection.commit()
        start, cpu = time.perf_counter(), _cpu()
        rows = 0
        with connection.cursor().copy("COPY bare (email, name, city, source) FROM STDIN") as copy:
            for row in _rows(csv_path):
                copy.write_row((row["email"], row["name"], row["city"], row["source"]))
                rows += 1
        connection.commit()
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    report({"rows": rows, "seconds": seconds, "cpu": cpu})


CHILDREN = {"ours": child_ours, "sqlite-insert": child_sqlite_insert, "copy": child_copy}


def _line(engine: str, what: str, result: dict[str, float]) -> list[object]:
    worker = result.get("worker_mib")
    return [
        engine,
        what,
        f"{int(result['rows']):,}",
        f"{result['seconds']:.2f}",
        f"{result['rows'] / result['seconds']:,.0f}",
        f"{result['cpu']:.2f}",
        f"{result['peak_mib']:.1f}",
        f"+{result['growth_mib']:.1f}" if "growth_mib" in result else "",
        f"{worker:.1f}" if worker else "",
    ]


HEADER = [
    "engine",
    "what",
    "rows",
    "seconds",
    "rows/s",
    "client CPU s",
    "peak MiB",
    "growth",
    "checker MiB",
]


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        CHILDREN[sys.argv[2]](*sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure")
    parser.add_argument("--memory", help="comma-separated row counts for the memory comparison")
    args = parser.parse_args()
    memory = [int(n) for n in args.memory.split(",")] if args.memory else []
    lines: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rows in dict.fromkeys([args.rows, *memory]):
            write_csv(work / f"{rows}.csv", rows)
        main_csv = str(work / f"{args.rows}.csv")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.rows:,} rows")
        ours = run_child("subscribers", "ours", f"sqlite:///{work / 'main.db'}", main_csv)
        bare = run_child("subscribers", "sqlite-insert", str(work / "bare.db"), main_csv)
        lines += [_line("SQLite", "import (ours)", ours)]
        lines += [_line("SQLite", "limit: executemany INSERT", bare)]
        if args.postgres:
            from tests.databases import fresh_postgres

            with fresh_postgres(args.postgres) as url:
                ours = run_child("subscribers", "ours", url, main_csv)
                bare = run_child("subscribers", "copy", url, main_csv)
            lines += [_line("PostgreSQL", "import (ours)", ours)]
            lines += [_line("PostgreSQL", "limit: bare COPY", bare)]
        peaks = []
        for rows in memory:
            url = f"sqlite:///{work / f'mem-{rows}.db'}"
            measured = run_child("subscribers", "ours", url, str(work / f"{rows}.csv"))
            peaks.append(measured["peak_mib"])
            lines.append(_line("SQLite", "import, memory", measured))
    print(table(HEADER, lines))
    if peaks:
        print(f"largest / smallest peak: {max(peaks) / min(peaks):.3f}")


if __name__ == "__main__":
    main()
