"""What the send benchmark stands on: Postfix's smtp-sink, and databases of N readers.

``smtp-sink`` is found, or Debian's ``postfix`` package installed with its daemon forbidden
to start (``policy-rc.d``); the daemon is never started. Each run gets a fresh copy of a
base database of N subscribers: a copied SQLite file, or ``CREATE DATABASE … TEMPLATE``
on PostgreSQL (dropped at the end).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# ---- the sink ---------------------------------------------------------------------


def smtp_sink_path() -> str:
    """``smtp-sink``, installing Debian's postfix package (never starting it) if missing."""
    for found in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink"):
        if found and os.path.exists(found):
            return found
    print("smtp-sink missing: installing the postfix package, its daemon not started", flush=True)
    policy = Path("/usr/sbin/policy-rc.d")
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=True,
        )
    finally:
        policy.unlink()
    return "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [smtp_sink_path(), *user, f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("smtp-sink did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait()


# ---- databases --------------------------------------------------------------------


def _import(url: str, subscribers: int, work: Path) -> None:
    from datetime import UTC, datetime

    from digest.database import open_database
    from subscribers.csv_import import import_csv

    csv_path = work / f"readers-{subscribers}.csv"
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("email,name\n")
        for i in range(subscribers):
            handle.write(f"reader.{i}@example.org,Reader {i}\n")
    db = open_database(url)
    import_csv(db, csv_path, lambda: datetime.now(UTC), confirmed=True)
    db.close()
    csv_path.unlink()


class Databases:
    """A base database per list size, and a fresh copy of it for every run."""

    def __init__(self, work: Path, postgres: str | None) -> None:
        self.work = work
        self.postgres = postgres
        self.made: list[str] = []
        self.serial = 0

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        assert self.postgres is not None
        engine = create_engine(self.postgres.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(sql))
        engine.dispose()

    def base(self, kind: str, subscribers: int) -> None:
        if kind == "sqlite":
            path = self.work / f"base-{subscribers}.db"
            if not path.exists():
                _import(f"sqlite:///{path}", subscribers, self.work)
            return
        name = f"bench_send_base_{subscribers}"
        if name not in self.made:
            self._admin(f"DROP DATABASE IF EXISTS {name}")
            self._admin(f"CREATE DATABASE {name}")
            self.made.append(name)
            _import(self._url(name), subscribers, self.work)

    def _url(self, name: str) -> str:
        assert self.postgres is not None
        return self.postgres.rsplit("/", 1)[0] + f"/{name}"

    def fresh(self, kind: str, subscribers: int) -> str:
        """A copy of the base database of that size, nothing sent yet: its URL."""
        self.base(kind, subscribers)
        self.serial += 1
        if kind == "sqlite":
            path = self.work / f"run-{self.serial}.db"
            shutil.copy(self.work / f"base-{subscribers}.db", path)
            return f"sqlite:///{path}"
        name = f"bench_send_run_{self.serial}"
        self._admin(f"DROP DATABASE IF EXISTS {name}")
        self._admin(f"CREATE DATABASE {name} TEMPLATE bench_send_base_{subscribers}")
        self.made.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        for name in self.made:
            self._admin(f"DROP DATABASE IF EXISTS {name}")
