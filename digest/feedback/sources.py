"""Messages from files: one ``.eml``, a Maildir folder, an mbox file, or a folder of ``.eml``.

Each message is read when its turn comes, so a mailbox of any size is filed in
constant memory. A file that can't be read is reported and skipped; the rest go on.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from digest.errors import FeedbackSourceError
from digest.feedback.store import Incoming


@dataclass
class FileSource:
    """The messages at ``path``; ``unreadable`` collects (file, reason) of those skipped."""

    path: Path
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def form(self) -> str:
        path = self.path
        if path.is_dir():
            return "maildir" if (path / "cur").is_dir() or (path / "new").is_dir() else "folder"
        if not path.exists():
            raise FeedbackSourceError(f"{path} does not exist")
        with path.open("rb") as handle:
            start = handle.read(5)
        return "mbox" if start == b"From " else "eml"

    def count(self) -> int | None:
        """How many messages there are, when that is cheap to know (for a progress bar)."""
        form = self.form
        if form == "maildir":
            return sum(1 for _ in self._maildir_files())
        if form == "folder":
            return sum(1 for _ in self._eml_files())
        return 1 if form == "eml" else None

    def __iter__(self) -> Iterator[Incoming]:
        form = self.form
        if form == "mbox":
            yield from self._mbox()
            return
        files: Iterator[Path]
        if form == "maildir":
            files = self._maildir_files()
        elif form == "folder":
            files = iter(sorted(self._eml_files()))
        else:
            files = iter([self.path])
        for file in files:
            try:
                yield Incoming(file.read_bytes(), str(file))
            except OSError as exc:
                self.unreadable.append((str(file), exc.strerror or str(exc)))

    def _eml_files(self) -> Iterator[Path]:
        """The folder's ``.eml`` files, the suffix in any case (``.EML`` from Windows)."""
        return (p for p in self.path.iterdir() if p.suffix.lower() == ".eml" and p.is_file())

    def _maildir_files(self) -> Iterator[Path]:
        """Streamed in directory order: a sorted list would grow with the mailbox."""
        for sub in ("new", "cur"):
            folder = self.path / sub
            if folder.is_dir():
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_file() and not entry.name.startswith("."):
                            yield Path(entry.path)

    def _mbox(self) -> Iterator[Incoming]:
        box = mailbox.mbox(self.path, create=False)
        try:
            for number, key in enumerate(box.iterkeys(), start=1):
                try:
                    yield Incoming(box.get_bytes(key), f"{self.path}#{number}")
                except (OSError, KeyError) as exc:
                    self.unreadable.append((f"{self.path}#{number}", str(exc)))
        finally:
            box.close()
