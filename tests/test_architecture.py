"""The package's shape, checked on its source: what import-linter cannot see.

import-linter (``lint-imports`` in scripts/test.sh, contracts in pyproject.toml) checks the
layer order and cycles. These tests check the rest of STYLE.md's "Shape of the code": no private
name crosses a module boundary, no module exists only to re-export, every subpackage says in its
docstring what it holds and what it may import, and no test imports another test module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import softmax_lab

PACKAGE = Path(softmax_lab.__file__).parent
TESTS = Path(__file__).parent
SUBPACKAGES = sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines itself at top level (not those it imports)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names - {"__all__"}


def private_uses(tree: ast.Module) -> list[str]:
    """``from softmax_lab.x import _y`` and ``x._y`` where ``x`` is a softmax_lab module."""
    found = []
    module_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("softmax_lab"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    module_aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {node.module} import {alias.name} (line {node.lineno})")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_crosses_a_module_boundary(name: str) -> None:
    assert private_uses(parse(MODULES[name])) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_only_re_exports(name: str) -> None:
    """A module defines what it exports; a package ``__init__`` is its docstring alone, unless
    it is itself a module of code (the package root, the command line)."""
    tree = parse(MODULES[name])
    exported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            exported = {ast.literal_eval(e) for e in node.value.elts}  # type: ignore[attr-defined]
    defined = defined_names(tree)
    assert exported <= defined, f"{name} exports names it does not define: {exported - defined}"
    if MODULES[name].name == "__init__.py" and not defined:
        code = [n for n in tree.body if not isinstance(n, ast.Expr | ast.ImportFrom)]
        imports = [
            n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module != "__future__"
        ]
        assert (code, imports) == ([], []), f"{name}: a package __init__ holds only its docstring"


@pytest.mark.parametrize("package", SUBPACKAGES, ids=lambda p: p.name)
def test_every_subpackage_says_what_it_holds_and_may_import(package: Path) -> None:
    doc = ast.get_docstring(parse(package / "__init__.py")) or ""
    assert "May import" in doc, f"{package.name}/__init__.py: say what the layer may import"
    for module in sorted(package.glob("*.py")):
        if module.name != "__init__.py":
            assert f"``{module.stem}``" in doc, f"{package.name}: {module.stem} not described"


def test_no_test_imports_another_test_module() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(parse(path)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                leaf = n.rsplit(".", 1)[-1]
                if leaf.startswith("test_") or leaf == "conftest":
                    offenders.append(f"{path.relative_to(TESTS)}: imports {n}")
    assert offenders == []


def test_the_checks_above_can_fail() -> None:
    """The detectors find what they look for (so a passing run means something)."""
    bad = ast.parse(
        "from softmax_lab.core.training import _x\n"
        "from softmax_lab.core import training\n"
        "training._y()\n"
    )
    assert len(private_uses(bad)) == 2
    facade = ast.parse("from softmax_lab.core.training import train\n__all__ = ['train']\n")
    assert defined_names(facade) == set()
