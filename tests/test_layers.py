"""Dependencies point downwards only (DESIGN.md, Layout).

Every module of a layer is parsed (not imported), so imports inside functions count, and
so do modules named by a string: `importlib.import_module("replay.cli")`, a tuple of
plugin paths, a `"package.module:Class"` default. A string that names a module of a
higher layer is a dependency on it, however it is loaded.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer -> the project packages it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "replay": {"engine"},
    "venues": {"engine", "replay"},
    "scenarios": {"engine", "replay", "venues"},
    "reports": {"engine"},
    "modes": {"engine", "replay", "venues", "scenarios", "reports"},
}
PACKAGES = set(ALLOWED)
_ALTERNATIVES = "|".join(sorted(PACKAGES))
_MODULE_STRING = re.compile(rf"^({_ALTERNATIVES})(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def references(source: str) -> list[tuple[int, str]]:
    """(line, top-level project package) for every import or module-naming string."""
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if _MODULE_STRING.match(text) and ("." in text or ":" in text):
                found.append((node.lineno, re.split(r"[.:]", text)[0]))
    return [(line, pkg) for line, pkg in found if pkg in PACKAGES]


def test_checker_sees_function_level_imports_and_module_strings():
    src = (
        '"""doc naming replay.cli is fine."""\n'
        "import importlib\n"
        "def f():\n"
        "    from venues.sim import SimCore\n"
        "    return importlib.import_module('reports.cli')\n"
        "PLUGINS = ('replay.cli',)\n"
        "DEFAULT = 'modes.backtest:run'\n"
    )
    assert sorted(references(src)) == [(4, "venues"), (5, "reports"), (6, "replay"), (7, "modes")]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down(layer: str):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, pkg in references(path.read_text()):
            if pkg != layer and pkg not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line} uses {pkg}")
    assert not bad, f"{layer} may import only {sorted(ALLOWED[layer]) or 'nothing of ours'}:\n" + "\n".join(bad)
