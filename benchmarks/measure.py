"""What every benchmark shares: child processes, peak memory read from /proc, the table.

Each measurement runs in a fresh child process (``python -m benchmarks.NAME child …``)
that prints one JSON object as its last line of output; :func:`run_child` starts it and
returns that object. Memory is read from ``/proc/self/status`` inside the child: VmRSS is
the resident size now, VmHWM the high-water mark. Not ``ru_maxrss``: a child started by
``fork`` inherits its parent's peak there, so a large parent would hide a small child.

Every benchmark prints its figures with the limit beside them (:func:`table`): the same
work done by the bare tool with nothing of ours, measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rss_kib(field: str = "VmRSS", pid: int | str = "self") -> int:
    """A memory figure of a process from /proc, in KiB: VmRSS (now) or VmHWM (the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def peak_mib() -> float:
    """This process's peak resident size so far, in MiB (VmHWM)."""
    return rss_kib("VmHWM") / 1024


def report(result: dict[str, Any]) -> None:
    """A child's answer: one JSON line on stdout, with its peak memory added."""
    result.setdefault("peak_mib", round(peak_mib(), 1))
    print(json.dumps(result), flush=True)


def run_child(
    module: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``python -m benchmarks.MODULE child ARGS…`` and return the JSON it printed last.

    The child's stderr passes through (progress, warnings); a failure shows its output.
    """
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "child", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"benchmarks.{module} child {' '.join(args)} exited {done.returncode}:\n{done.stdout}"
        )
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (it reads in a terminal and pastes into a note as is)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def descendants(pid: int | str = "self") -> list[int]:
    """The processes started by ``pid`` and by them, from /proc (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in map(int, children):
            found.append(child)
            with contextlib.suppress(OSError):  # the process ended meanwhile
                found.extend(descendants(child))
    return found


class ChildPeaks:
    """The peak resident size (VmHWM) of each process this one starts, while in the block.

    A thread reads /proc every ``interval`` seconds; a process's VmHWM only grows, so the
    last reading before it ends is its peak up to then (short-lived peaks included).
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.peaks_kib: dict[int, int] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            for pid in descendants():
                with contextlib.suppress(OSError, LookupError):  # ended, or a zombie
                    self.peaks_kib[pid] = rss_kib("VmHWM", pid)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mib(self) -> float:
        """The largest peak of any of them, in MiB (0 if none was seen)."""
        return max(self.peaks_kib.values(), default=0) / 1024
