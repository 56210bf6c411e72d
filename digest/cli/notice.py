"""One line on stderr, before a command that writes or sends: which settings it runs with.

A command run in the wrong folder would otherwise quietly make a database there and
mail from the example publication. So every command in :data:`WRITING` first says
``using settings from /srv/news/digest.toml`` (naming any ``DIGEST_*`` settings in the
environment too), or that there is no ``digest.toml`` and that ``digest init`` writes
one. The commands in :data:`QUIET` say nothing; every command is in one of the two
(``tests/digest/test_settings_notice.py`` checks), so a new command must be placed.

The line is printed by wrapping the chosen commands' callbacks once, in the app's
callback, so no command body has to remember it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from digest.cli.options import console

#: Commands that write (a database, a file, the editions folder) or send mail.
WRITING = frozenset(
    {
        "approve",
        "new",
        "pause",
        "resume",
        "retry",
        "run",
        "send",
        "serve",
        "feedback fetch",
        "feedback import",
        "feedback listen",
        "reads add",
        "schedule add",
        "schedule cancel",
        "schedule move",
        "subscribers add",
        "subscribers confirmations",
        "subscribers erase",
        "subscribers import",
        "subscribers unsubscribe",
    }
)
#: Commands that only read and print; ``init`` and ``demo`` say what they write themselves
#: (the demo writes only into its own folder and never sends real mail).
QUIET = frozenset(
    {
        "check",
        "demo",
        "init",
        "preview",
        "status",
        "feedback export",
        "feedback list",
        "feedback show",
        "reads list",
        "schedule list",
        "subscribers export",
        "subscribers list",
        "subscribers show",
    }
)


def commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every runnable command under a click group: ``("subscribers add", command)``.

    Typer ships its own copy of click, so a group is known by its ``commands``.
    """
    for name, command in getattr(group, "commands", {}).items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            yield from commands(command, f"{path} ")
        else:
            yield path, command


def announce_writers(group: Any) -> None:
    """Make each command in :data:`WRITING` under ``group`` say its settings first.

    ``group`` is the click group built for this one run, so wrapping its commands
    changes nothing for the next run.
    """
    for path, command in commands(group):
        callback = command.callback
        if path in WRITING and callback is not None and not hasattr(callback, "_announced"):
            command.callback = _announcing(callback)


def _announcing(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def announced(*args: Any, **kwargs: Any) -> Any:
        line = settings_line(kwargs.get("config"))
        if line:
            console(stderr=True).print(line, markup=False)
        return callback(*args, **kwargs)

    announced._announced = True  # type: ignore[attr-defined]
    return announced


def settings_line(config: Path | None) -> str | None:
    """What the notice says, or ``None`` when a named file is missing (loading says so)."""
    from digest.settings import DEFAULT_CONFIG_FILE  # pydantic: only once a writer runs

    variables = environment_settings()
    extra = f" and {', '.join(variables)}" if variables else ""
    if config is not None:
        if not config.is_file():
            return None
        return f"using settings from {config.resolve()}{extra}"
    if DEFAULT_CONFIG_FILE.is_file():
        return f"using settings from {DEFAULT_CONFIG_FILE.resolve()}{extra}"
    return (
        f"no {DEFAULT_CONFIG_FILE} in {Path.cwd()}: using the built-in example settings{extra}; "
        f'"digest init" writes one'
    )


def environment_settings() -> list[str]:
    """The DIGEST_* variables that set a setting (names only: values may be passwords)."""
    from digest.settings import Settings

    fields = {f"DIGEST_{name.upper()}" for name in Settings.model_fields}
    return sorted(name for name in os.environ if name.upper().split("__")[0] in fields)


def settings_notice(ctx: typer.Context) -> None:
    """The app's callback: before the command runs, have writers announce their settings."""
    announce_writers(ctx.command)
