"""One exception tree per package: the classes match the tree drawn in the docstring,
and no other module defines a public exception of its own."""

from __future__ import annotations

import ast
import builtins
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import digest.errors
import subscribers.errors

ROOT = Path(__file__).resolve().parent.parent
ERROR_MODULES = {"digest": digest.errors, "subscribers": subscribers.errors}
#: One line of the drawing: the indent and branch marks, then a class name.
_LINE = re.compile(r"^(?P<marks>[ │├└─]*)(?P<name>[A-Z]\w*)\b")


def drawn_tree(module: ModuleType) -> set[tuple[str, str | None]]:
    """(class, parent) pairs read off the ``::`` block in the module's docstring."""
    doc = module.__doc__ or ""
    block = doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0]
    pairs: set[tuple[str, str | None]] = set()
    parents: dict[int, str] = {}
    for line in block.splitlines():
        found = _LINE.match(line.strip("\n")[4:])  # the block is indented by four
        assert found, f"cannot read the tree line {line!r}"
        depth = len(found["marks"]) // 4
        parents[depth] = found["name"]
        pairs.add((found["name"], parents[depth - 1] if depth else None))
    return pairs


def class_tree(module: ModuleType) -> set[tuple[str, str | None]]:
    """(class, parent) pairs of the exception classes the module defines."""
    pairs: set[tuple[str, str | None]] = set()
    for name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
            continue
        base = cls.__bases__[0]
        pairs.add((name, base.__name__ if base.__module__ == module.__name__ else None))
    return pairs


@pytest.mark.parametrize("package", sorted(ERROR_MODULES))
def test_docstring_draws_the_exception_tree(package: str) -> None:
    """Every exception class in the errors module is drawn, under its real parent, and no more."""
    module = ERROR_MODULES[package]
    assert drawn_tree(module) == class_tree(module)


def _exception_names() -> set[str]:
    """Names that make a class an exception: the builtins and every class in the two trees."""
    names = {
        n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
    }
    for module in ERROR_MODULES.values():
        names |= {name for name, _ in class_tree(module)}
    return names


def exception_classes(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, name) of the public classes in ``source`` whose bases name an exception."""
    known = _exception_names()
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
            continue
        bases = {
            b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases
        }
        if bases & known:
            found.append((node.lineno, node.name))
    return found


@pytest.mark.parametrize("package", sorted(ERROR_MODULES))
def test_no_exception_defined_outside_the_errors_module(package: str) -> None:
    """A public exception class anywhere else in the package would escape the drawn tree."""
    own = Path(ERROR_MODULES[package].__file__ or "").resolve()
    stray = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.resolve() != own
        for line, name in exception_classes(path.read_text(), str(path))
    ]
    assert stray == []


def test_the_scan_finds_a_stray_exception() -> None:
    """The scan recognises an exception class by its base, builtin, ours or dotted."""
    source = (
        "class Oops(DigestError): pass\n"
        "class Fine(ValueError): pass\n"
        "class Dotted(errors.TokenError): pass\n"
        "class _Private(Exception): pass\n"
        "class Plain: pass\n"
    )
    assert [name for _, name in exception_classes(source)] == ["Oops", "Fine", "Dotted"]
