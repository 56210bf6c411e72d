"""Start-up: how long ``digest`` takes, as a whole process, and its peak memory.

    python benchmarks/startup.py              # 9 runs of each, medians
    python benchmarks/startup.py --runs 15 --source /path/to/another/checkout
    python benchmarks/startup.py --before /path/to/the/previous/commit

Each run is a fresh process, timed from start to exit by this one: ``digest --help``,
``digest --version``, ``digest status --help``, ``digest status DATE`` and ``digest
subscribers list`` (on a SQLite database with one sent edition, made by ``digest demo``
first). Beside them, the limits measured in the same run: a bare ``python -c pass``,
``import typer``, a bare typer app of two commands printing its plain ``--help`` (the
floor of every ``--help``), ``import typer`` with the ``importlib.metadata`` that
``--version`` reads the version with, typer's Rich help (for comparison: ``digest``'s
help is plain text), ``import sqlalchemy``, and what a command on the database can't
start without: typer, SQLAlchemy's ORM and pydantic-settings. Runs go round-robin, so a
busy moment of the machine spreads over every row instead of spoiling one.

Every process runs with its modules compiled, as an installed ``digest`` has them (pip
compiles them as it installs): ``PYTHONDONTWRITEBYTECODE`` is dropped and the compiled
files go to a scratch folder (``PYTHONPYCACHEPREFIX``), written in a first round that
is not counted. Compiling our own modules from source on every run cost more than
some of the rows measured.

Peak memory is the process's own high-water mark (VmHWM, read from /proc as it exits).
Not ``ru_maxrss`` from ``wait4``: a child started by ``vfork`` and ``exec`` reports its
parent's peak there when that is larger.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import median, table  # noqa: E402

#: Run first in every measured process: write its peak resident size (KiB) on exit.
PRELUDE = """\
import atexit, os, sys
def _peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["STARTUP_PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(_peak)
"""
#: What the ``digest`` console script runs.
DIGEST = "from digest.cli import main\nsys.argv[0] = 'digest'\nsys.exit(main())\n"


@dataclass
class Row:
    """One process to measure: a label, the code ``python -c`` runs and its arguments."""

    label: str
    code: str
    args: tuple[str, ...] = ()
    limit: str | None = None  # the label of the row that is this one's floor
    source: Path | None = None  # another checkout to run it from (``--before``)
    seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)


#: A bare typer app of two commands, showing its help as ``digest`` does: click's plain
#: text, without Rich (``rich_markup_mode=None``).
BARE_HELP = """\
import typer
app = typer.Typer(rich_markup_mode=None, add_completion=False)
@app.command()
def one(value: int = 1) -> None:
    \"\"\"One command.\"\"\"
@app.command()
def two() -> None:
    \"\"\"Another.\"\"\"
app()
"""


def rows(day: str) -> list[Row]:
    help_floor = "python: a bare typer app's plain --help"
    version_floor = "python: import typer + importlib.metadata"
    db_floor = "python: import typer, sqlalchemy.orm, pydantic_settings"
    return [
        Row("python -c pass", "pass"),
        Row("python: import typer", "import typer"),
        Row(help_floor, BARE_HELP, ("--help",)),
        Row(version_floor, "import typer, importlib.metadata"),
        # for comparison: what typer's Rich help imports (digest's help is plain text)
        Row("python: import typer + its Rich help", "import typer, typer.rich_utils"),
        Row("python: import sqlalchemy", "import sqlalchemy"),
        # what a command on the database can't start without: the CLI, the ORM, the settings
        Row(db_floor, "import typer, sqlalchemy.orm, pydantic_settings"),
        Row("digest --help", DIGEST, ("--help",), help_floor),
        Row("digest --version", DIGEST, ("--version",), version_floor),
        Row("digest status --help", DIGEST, ("status", "--help"), help_floor),
        Row(f"digest status {day}", DIGEST, ("status", day), db_floor),
        Row("digest subscribers list", DIGEST, ("subscribers", "list"), db_floor),
    ]


def measure_once(row: Row, env: dict[str, str], folder: Path) -> None:
    peak_file = folder / "peak"
    peak_file.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + row.code, *row.args],
        cwd=folder,
        env={
            **env,
            **({"PYTHONPATH": str(row.source)} if row.source else {}),
            "STARTUP_PEAK_FILE": str(peak_file),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    row.seconds.append(time.perf_counter() - start)
    if done.returncode != 0:
        raise RuntimeError(f"{row.label} exited {done.returncode}:\n{done.stderr}")
    row.peak_kib.append(int(peak_file.read_text()))


def prepare(env: dict[str, str], folder: Path) -> str:
    """A SQLite database with one sent edition (``digest demo``); the edition's date."""
    subprocess.run(
        [sys.executable, "-c", "import sys\n" + DIGEST, "demo", "--out", str(folder / "demo")],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    found = subprocess.run(
        [sys.executable, "-c", "import sys\n" + DIGEST, "feedback", "list", "--format", "json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    day: str = json.loads(found.stdout)[0]["edition"]
    return day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each process (default 9)")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the checkout whose digest is measured"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (the previous commit) whose digest rows run in the same rounds",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-startup-") as scratch:
        folder = Path(scratch)
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("DIGEST_") and k != "PYTHONDONTWRITEBYTECODE"
            },
            "PYTHONPATH": str(options.source.resolve()),
            "DIGEST_DATABASE_URL": f"sqlite:///{folder / 'demo' / 'demo.db'}",
            # compiled modules, as an installed digest has them, kept out of the checkouts
            "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
        }
        measured = rows(prepare(env, folder))
        if options.before:
            before = options.before.resolve()
            measured += [
                Row(f"{row.label} (before)", row.code, row.args, row.limit, before)
                for row in measured
                if row.code == DIGEST
            ]
        for row in measured:  # a round not counted: it compiles what each one imports
            measure_once(row, env, folder)
            row.seconds.clear()
            row.peak_kib.clear()
        for _ in range(options.runs):
            for row in measured:
                measure_once(row, env, folder)
    by_label = {row.label: row for row in measured}
    lines = []
    for row in measured:
        floor = by_label[row.limit] if row.limit else None
        lines.append(
            (
                row.label,
                f"{median(row.seconds):.3f}",
                f"{min(row.seconds):.3f}",
                f"{median(row.peak_kib) / 1024:.1f}",
                f"{floor.label}: {median(floor.seconds):.3f} s" if floor else "",
            )
        )
    print(f"{options.runs} runs each of {options.source.resolve()} ({sys.executable})")
    if options.before:
        print(f"(before): {options.before.resolve()}, in the same rounds")
    print(table(("process", "median s", "fastest s", "peak MiB", "the limit"), lines))


if __name__ == "__main__":
    main()
