"""The editions folder: finding an edition file by path or by date, writing outputs safely."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from digest.edition.dates import parse_date
from digest.errors import DigestError, SourceNotFoundError

EXAMPLE_EDITION = Path(__file__).resolve().parent / "examples" / "2017-11-02.md"


def resolve_source(source: str, editions_dir: Path) -> Path:
    """An existing edition file, named by path or by its date (``2017-11-02``).

    Anything else is a ``SourceNotFoundError`` whose message says "not found".
    """
    path = Path(source)
    if path.is_file():
        return path
    day = parse_date(source)
    if day is not None:
        candidate = editions_dir / f"{day.isoformat()}.md"
        if candidate.is_file():
            return candidate
        raise SourceNotFoundError(
            f"no edition for {day.isoformat()}: {candidate} not found "
            f"(editions folder: {editions_dir.resolve()}; set editions_dir to change it; "
            f"`digest new {day.isoformat()}` writes one)"
        )
    if path.exists():
        raise SourceNotFoundError(
            f"{source}: not found as an edition file (it exists but is not a file)"
        )
    raise SourceNotFoundError(
        f"{source}: not found (no such file, and not a date YYYY-MM-DD in {editions_dir})"
    )


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """A text file that appears at ``path`` whole when the block ends, or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(temp, path)
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        Path(temp).unlink(missing_ok=True)


def write_atomic(path: Path, data: str) -> None:
    """Write ``data`` so readers see the old file or the whole new one, never a part."""
    with atomic_output(path) as out:
        out.write(data)
