"""Every error the publisher raises on purpose, in one tree.

::

    DigestError                 anything the CLI reports as a clear message
    ├── ConfigError             digest.toml / DIGEST_* settings are unusable
    ├── SourceNotFoundError     an edition named by path or date does not exist
    ├── EditionError            an edition file is invalid; carries every Problem
    ├── ReadError               a read's page or a feed could not be fetched or understood
    ├── TemplateError           a template is missing or fails to render
    └── RenderError             the rendered email is unusable
        └── EmailTooLargeError  the HTML passes the size limit (Gmail clips it)

The CLI turns a ``DigestError`` into a message on stderr and a non-zero exit
status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DigestError(Exception):
    """Base of every error the publisher reports to a person."""


class ConfigError(DigestError):
    """The settings file or an environment override is unusable."""


class SourceNotFoundError(DigestError):
    """No edition file could be found for what the user named."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an edition file, located as precisely as it can be."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class EditionError(DigestError):
    """An edition file is invalid. All problems found are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def single(cls, path: str | Path, line: int | None, message: str) -> EditionError:
        return cls([Problem(str(path), line, message)])


class ReadError(DigestError):
    """A read's page or a feed could not be fetched or understood."""


class TemplateError(DigestError):
    """A template is missing, malformed, or refers to an undefined value."""


class RenderError(DigestError):
    """The rendered email cannot be used as it is."""


class EmailTooLargeError(RenderError):
    """The HTML is larger than the configured limit; Gmail would clip it."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the HTML email is {size:,} bytes, over the limit of {limit:,} bytes: "
            "Gmail clips messages past about 102 KB and hides the footer with the "
            "unsubscribe link. Shorten the edition (fewer or shorter sections or reads), "
            "or pass --allow-large / raise render.max_html_bytes if you accept clipping."
        )
