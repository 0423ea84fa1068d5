"""The one-way floors of HOUSE_STYLE: a lower app never imports a higher one -- not by an import statement,
not lazily inside a function, and not as a dotted path in a string (a setting-like string in code naming a
higher app is the same climb in disguise; docstrings may describe higher floors)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

FLOORS = ["core", "audit", "organizations", "accounts", "hosts", "metrics", "logs", "alerts", "escalation",
          "dashboards"]
APPS = Path(__file__).resolve().parents[1] / "apps"
DOTTED = re.compile(r"\bapps\.([a-z_]+)")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def referenced_apps(path: Path) -> set[tuple[str, int]]:
    """(app, line) for every app this module imports or names in a non-docstring string."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstring_nodes(tree)
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names = [match.group(0) for match in DOTTED.finditer(node.value)]
        else:
            continue
        for name in names:
            match = DOTTED.match(name)
            if match:
                found.add((match.group(1), node.lineno))
    return found


def _modules() -> list[tuple[str, Path]]:
    return [(app, path) for app in FLOORS if (APPS / app).is_dir() for path in sorted((APPS / app).rglob("*.py"))]


def test_every_app_has_a_floor() -> None:
    apps = {path.name for path in APPS.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert apps <= set(FLOORS), f"apps without a floor in HOUSE_STYLE: {sorted(apps - set(FLOORS))}"


@pytest.mark.parametrize(("app", "path"), _modules(), ids=lambda value: str(value).rsplit("apps/", 1)[-1])
def test_no_app_reaches_a_higher_floor(app: str, path: Path) -> None:
    floor = FLOORS.index(app)
    climbs = sorted((line, other) for other, line in referenced_apps(path)
                    if other in FLOORS and FLOORS.index(other) > floor)
    assert not climbs, f"{path.relative_to(APPS.parent)} reaches higher floors: {climbs}"
