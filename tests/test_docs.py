"""The README documents what exists: every command, every setting, every place in the tree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel

from digest.cli.app import app
from digest.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under ``## title``, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def command_paths(command: Any, prefix: str = "digest") -> set[str]:
    """Every runnable command path, e.g. ``digest subscribers add``; hidden ones left out.

    Typer ships its own copy of click, so a group is known by its ``commands``.
    """
    commands: dict[str, Any] | None = getattr(command, "commands", None)
    if commands is not None:
        paths: set[str] = set()
        for name, sub in commands.items():
            if not sub.hidden:
                paths |= command_paths(sub, f"{prefix} {name}")
        return paths
    return {prefix}


def setting_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every settings key as dotted TOML names, e.g. ``delivery.connections``."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= setting_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def documented_keys() -> set[str]:
    """The keys of the example ``digest.toml`` in the README's Settings section."""
    block = re.search(r"```toml\n(.*?)```", section("Settings"), re.S)
    assert block, "the Settings section has no toml example"
    keys, table = set(), ""
    for line in block.group(1).splitlines():
        if header := re.match(r"\[(\w+)\]", line):
            table = header.group(1) + "."
        elif key := re.match(r"(\w+) = ", line):
            keys.add(table + key.group(1))
    return keys


def test_the_command_table_is_one_table() -> None:
    """The Commands section's table has no blank line breaking it in two."""
    lines = section("Commands").strip().splitlines()
    rows = [number for number, line in enumerate(lines) if line.startswith("|")]
    assert rows, "no table in the Commands section"
    assert rows == list(range(rows[0], rows[-1] + 1)), "a blank line splits the command table"


def test_every_command_is_in_the_readme() -> None:
    """Each command `digest --help` offers has a row in the README's command table."""
    table = section("Commands")
    named = {
        " ".join(word for word in cell.split() if re.fullmatch(r"[a-z][a-z-]*", word))
        for cell in re.findall(r"`(digest [^`]*)`", table)
    }
    missing = {path for path in command_paths(typer.main.get_command(app)) if path not in named}
    assert not missing, f"commands missing from the README's table: {sorted(missing)}"


def test_every_setting_is_in_the_readme_and_no_other() -> None:
    """The README's example digest.toml names every setting, and only real ones."""
    real, documented = setting_keys(Settings), documented_keys()
    assert not real - documented, f"settings missing from the README: {sorted(real - documented)}"
    assert not documented - real, f"the README names unknown settings: {sorted(documented - real)}"


def test_where_things_live_names_real_paths_and_every_package() -> None:
    """Each path in "Where things live" exists, and every package of digest/ is listed."""
    table = section("Where things live")
    paths = re.findall(r"^\| `([^`]+)`", table, re.M)
    assert paths, "no table in 'Where things live'"
    missing = [p for p in paths if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"'Where things live' names paths that do not exist: {missing}"
    packages = {
        f"digest/{p.name}/" for p in (ROOT / "digest").iterdir() if (p / "__init__.py").is_file()
    }
    assert not packages - set(paths), f"packages not described: {sorted(packages - set(paths))}"
