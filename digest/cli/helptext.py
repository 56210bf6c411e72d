"""``digest … --help`` as the commands are written: every help text shown as typed.

Typer draws help with Rich and reads each help text as Rich markup, so
``Port [web.port].`` came out as ``Port .``: a bracketed word looked like a style
tag and vanished. ``command`` builds the click command of the ``digest`` app once
and prepares it for showing:

- every help text is escaped for Rich markup, so brackets show as written;
- a flag (``--open``) shows no ``<bool>`` type: it takes no value;
- an argument is named in capitals (``SOURCE``), as the README and the help texts
  name it, and the usage line shows it as ``SOURCE`` (``[DATE]`` when optional)
  rather than Typer's ``{source}``.

``digest --version`` is here too: the version of the installed distribution.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperOption

from digest.cli.options import console

DISTRIBUTION = "digest-publisher"


def _show_version(wanted: bool) -> None:
    if wanted:
        try:
            number = version(DISTRIBUTION)
        except PackageNotFoundError:
            number = f"unknown ({DISTRIBUTION} is not installed)"
        console().print(f"digest {number}", markup=False)
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        is_eager=True,
        expose_value=False,
        callback=_show_version,
        help="Show the version of digest and exit.",
    ),
]


class Command(TyperCommand):
    """A command whose usage line names its arguments as its help does: ``SOURCE``, ``[DATE]``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def usage_name(argument: TyperArgument) -> str:
    """``SOURCE`` when required, ``[DATE]`` when not, ``PATH...`` when repeated."""
    name = argument.metavar or (argument.name or "").upper()
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


def command(app: typer.Typer) -> Any:
    """The click command of ``app`` and its subcommands, ready to run and to show help."""
    _use_command_class(app)
    built = typer.main.get_command(app)
    for each in walk(built):
        _as_written(each)
    return built


def walk(command: Any) -> list[Any]:
    """``command`` and, for a group, every command under it, hidden ones included.

    Typer ships its own copy of click, so a group is known by its ``commands``.
    """
    found = [command]
    for sub in (getattr(command, "commands", None) or {}).values():
        found += walk(sub)
    return found


def _use_command_class(app: typer.Typer) -> None:
    """``Command`` for every command registered without a class of its own."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = Command
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _use_command_class(group.typer_instance)


def _as_written(command: Any) -> None:
    command.help = _text(command.help)
    command.short_help = _text(command.short_help)
    command.epilog = _text(command.epilog)
    context = typer.Context(command)
    for param in command.get_params(context):
        if isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
        if isinstance(param, TyperOption):
            if param.is_flag and param.metavar is None:
                param.metavar = ""
            param.help = _text(param.help)
        elif isinstance(param, TyperArgument):
            param.help = _text(param.help)


def _text(help_text: str | None) -> str | None:
    """A help text as Rich markup that shows it as typed: ``[web.port]`` stays."""
    return None if help_text is None else escape(help_text)
