"""``digest … --help`` as the commands are written: every help text shown as typed.

``command`` builds the click command of the ``digest`` app once and prepares it
for showing:

- help is plain text, as click writes it, not drawn with Rich: importing Rich and
  Typer's Rich help (with its Markdown parser) took longer than everything else
  ``digest --help`` does. Plain text also shows every help text as typed, where
  Rich read it as markup and ``Port [web.port].`` came out as ``Port .``;
- a command listed in its group's help shows the whole first paragraph of its help,
  where click would cut it at 45 characters with ``...``;
- a flag (``--open``) shows no ``<bool>`` type: it takes no value;
- an argument is named in capitals (``SOURCE``), as the README and the help texts
  name it, and the usage line shows it as ``SOURCE`` (``[DATE]`` when optional)
  rather than Typer's ``{source}``.

``digest --version`` is here too: the version of the installed distribution.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperArgument, TyperCommand, TyperOption
from typer.models import CommandInfo, TyperInfo

DISTRIBUTION = "digest-publisher"


def _show_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version(DISTRIBUTION)
        except PackageNotFoundError:
            number = f"unknown ({DISTRIBUTION} is not installed)"
        typer.echo(f"digest {number}")  # plain: Rich is imported only to print tables
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


def command(app: typer.Typer, args: Sequence[str] | None = None) -> Any:
    """The click command of ``app``, ready to run ``args`` and to show help.

    Typer reads every parameter's annotations as it builds a command, and building all
    of ``digest``'s cost as much as a quick command's own work, so only what ``args``
    reach is built: the command they name (``status 2017-11-02``) or, when they name
    none (``--help``, ``--version``, nothing), the top-level commands with each group
    built without its commands, as the top-level help lists no more. With ``args``
    left out, everything is built.
    """
    _use_command_class(app)
    built = typer.main.get_command(app if args is None else _reached(app, args))
    for each in walk(built):
        _as_written(each)
    return built


def _reached(app: typer.Typer, args: Sequence[str]) -> typer.Typer:
    """``app`` with only what ``args`` can run or show (see ``command``).

    ``digest`` itself takes no option with a value, so a command's name can only
    come first; after ``--help`` or ``--version`` it runs nothing.
    """
    name = args[0] if args else None
    commands = [info for info in app.registered_commands if _name(info) == name]
    groups = [info for info in app.registered_groups if info.name == name]
    reached = copy.copy(app)
    if commands or groups:
        reached.registered_commands = commands
        reached.registered_groups = groups
    else:  # the top-level help, the version, or a mistyped name click answers
        reached.registered_groups = [_listed(info) for info in app.registered_groups]
    return reached


def _name(info: CommandInfo) -> str:
    return info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))


def _listed(info: TyperInfo) -> TyperInfo:
    """A group as the top-level help lists it: its name and help, none of its commands."""
    listed = copy.copy(info)
    if info.typer_instance is not None:
        listed.typer_instance = copy.copy(info.typer_instance)
        listed.typer_instance.registered_commands = []
        listed.typer_instance.registered_groups = []
    return listed


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
    command.rich_markup_mode = None  # click's plain help: see the module's docstring
    if command.help and not command.short_help:
        command.short_help = " ".join(command.help.split("\n\n")[0].split())
    context = typer.Context(command)
    help_option = command.get_help_option(context)
    if help_option is not None and help_option.default is None:
        # Typer checks the value of an option with pydantic (100 ms to import), unless
        # it is a bool: so that `digest status --help` imports none of it, ``--help``
        # left out is False rather than None
        help_option.default = False
    for param in command.get_params(context):
        if isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
