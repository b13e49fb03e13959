"""Small rooms: no product function over 80 lines and no product module over 500.

Firebreak is extended by reading it, so a reader should never need more than one screenful to follow a function.
Two kinds of module are long by nature and exempt: the settings schema (one field per key of firebreak.toml)
and the table definitions (one class per table); migrations are generated history.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("core", "memory", "app", "graph", "nodes", "ui", "cli", "evals")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
LONG_BY_NATURE = frozenset({"core/config.py", "memory/tables.py"})


def product_modules(root: Path = ROOT) -> list[Path]:
    return [
        path
        for package in PRODUCT
        for path in sorted((root / package).rglob("*.py"))
        if "migrations/versions" not in path.as_posix()
    ]


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """The module itself when it is too long, and each function in it that is."""
    where = path.relative_to(root).as_posix()
    source = path.read_text(encoding="utf-8")
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES and where not in LONG_BY_NATURE:
        found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def test_no_product_module_or_function_is_oversized():
    modules = product_modules()

    assert len(modules) > 100  # the scan covers the product
    assert [problem for path in modules for problem in oversized(path)] == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def long():\n" + "    x = 1\n" * 80, "room/planted.py:1 long: 81 lines (at most 80)"),
        ("x = 1\n" * 501, "room/planted.py: 501 lines (at most 500)"),
    ],
)
def test_the_size_check_finds_a_planted_oversized_room(tmp_path, source, expected):
    module = tmp_path / "room" / "planted.py"
    module.parent.mkdir()
    module.write_text(source)

    assert oversized(module, root=tmp_path) == [expected]
