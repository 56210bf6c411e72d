"""What a settings error says: where the bad value came from, and a guess for a misspelt key.

Each problem is one line, led by where the value was set:

* ``digest.toml:12: publication.contact_email: value is not a valid email address …``,
  the line of the key in the settings file (``tomllib`` gives no positions, so
  :func:`key_line` finds it in the text, following ``[table]`` headers and dotted keys);
* ``DIGEST_WEB__PUBLIC_URL: web.public_url: must be an absolute http:// or https:// URL``
  when an environment variable set it (the variable wins over the file, as in loading);
* the dotted key alone when an argument in code set it.

An unknown key is answered with the nearest valid key of its table, if one is close
(``did you mean 'contact_email'?``). Values are never quoted: one may be a password.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

ENV_PREFIX = "DIGEST_"
ENV_DELIMITER = "__"

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")


@dataclass(frozen=True)
class Sources:
    """What one load was given, to tell which layer a bad value came from."""

    file: Path | None
    text: str
    file_values: Mapping[str, Any]
    overrides: Mapping[str, Any]


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[:1] in "\"'" else part for part in re.findall(_PART, dotted))


def key_line(text: str, path: Sequence[str]) -> int | None:
    """The line (from 1) of TOML ``text`` that sets the key at ``path``, or ``None``.

    The line of a ``[table]`` header when ``path`` names the table itself; the line of
    an inline table or array when the key is inside one. Lines inside multi-line
    strings are skipped.
    """
    wanted = tuple(path)
    table: tuple[str, ...] = ()
    quotes: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if quotes is not None:
            if line.count(quotes) % 2:
                quotes = None
            continue
        if header := _HEADER.match(line):
            table = _split_key(header.group(1))
            if table == wanted:
                return number
        elif key := _KEY.match(line):
            full = table + _split_key(key.group(1))
            shorter = min(len(full), len(wanted))
            if full[:shorter] == wanted[:shorter]:
                return number
            rest = line[key.end() :]
            for delimiter in ('"""', "'''"):
                if rest.count(delimiter) % 2:
                    quotes = delimiter
                    break
    return None


def _model_at(model: type[BaseModel], path: Sequence[str]) -> type[BaseModel] | None:
    for name in path:
        field = model.model_fields.get(name)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _key_path(model: type[BaseModel], loc: Sequence[int | str]) -> tuple[str, ...]:
    """The settings keys of an error's location: up to the first part that isn't a key
    (a list index, or the key an unknown key is)."""
    keys: list[str] = []
    current: type[BaseModel] | None = model
    for part in loc:
        if not isinstance(part, str) or current is None:
            break
        keys.append(part)
        if part not in current.model_fields:
            break
        current = _model_at(current, [part])
    return tuple(keys)


def _nested(values: Mapping[str, Any], path: Sequence[str]) -> bool:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


def _environment_variable(path: Sequence[str]) -> str | None:
    """The DIGEST_* variable that set ``path`` (or its table, as JSON), if any."""
    names = {name.upper(): name for name in os.environ}
    for end in range(len(path), 0, -1):
        name = ENV_PREFIX + ENV_DELIMITER.join(path[:end]).upper()
        if name in names:
            return names[name]
    return None


def _message(model: type[BaseModel], error: ErrorDetails, keys: Sequence[str]) -> str:
    if error["type"] != "extra_forbidden":
        return error["msg"].removeprefix("Value error, ")
    table = _model_at(model, keys[:-1])
    valid = list(table.model_fields) if table is not None else []
    guesses = difflib.get_close_matches(keys[-1], valid, n=1)
    if guesses:
        return f"unknown setting; did you mean {guesses[0]!r}?"
    return "unknown setting (check the spelling)"


def _where(sources: Sources, keys: Sequence[str], dotted: str) -> str:
    if _nested(sources.overrides, keys):
        return f"{dotted}: "
    variable = _environment_variable(keys)
    if variable is not None:
        return f"{variable}: {dotted}: "
    if sources.file is not None and _nested(sources.file_values, keys):
        line = key_line(sources.text, keys)
        return f"{sources.file}:{line}: {dotted}: " if line else f"{sources.file}: {dotted}: "
    return f"{dotted}: "


def describe(model: type[BaseModel], exc: ValidationError, origin: str, sources: Sources) -> str:
    """Every problem in ``exc``, one line each, led by where its value was set."""
    lines = [f"invalid settings ({origin}):"]
    for error in exc.errors():
        keys = _key_path(model, error["loc"])
        dotted = ".".join(str(part) for part in error["loc"])
        lines.append(f"  {_where(sources, keys, dotted)}{_message(model, error, keys)}")
    return "\n".join(lines)
