"""Each node reads only the services its protocol names (``nodes/needs.py``), and mypy holds it to that.

A node binds ``ctx.services`` once, to its protocol, and passes that on; one mypy run over two planted modules
proves a read outside a protocol is an error, and that ``Services`` satisfies every protocol. mypy, not a runtime
check of names against ``dataclasses.fields(Services)``: it checks the types too, which names alone would not.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODES = sorted(path for path in (ROOT / "nodes").glob("*.py") if path.name != "__init__.py")


def protocols() -> dict[str, list[str]]:
    """Module name -> the protocols it defines, for every module of ``nodes/``."""
    found: dict[str, list[str]] = {}
    for path in NODES:
        module = importlib.import_module(f"nodes.{path.stem}")
        names = [
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and getattr(value, "_is_protocol", False) and value.__module__ == module.__name__
        ]
        if names:
            found[module.__name__] = names
    return found


def test_nodes_reach_services_only_through_a_protocol():
    known = {name for names in protocols().values() for name in names}
    bindings, reads = [], []
    for path in NODES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Attribute):
                if node.value.attr == "services":
                    assert isinstance(node.annotation, ast.Name) and node.annotation.id in known, ast.unparse(node)
                    bindings.append(node.value)
            elif isinstance(node, ast.Attribute) and node.attr == "services":
                reads.append(node)
    assert len(bindings) >= 12  # every node that uses the services binds them
    assert [f"{ast.unparse(read)} at line {read.lineno}" for read in reads if read not in bindings] == []


def test_mypy_rejects_a_read_outside_the_protocol_and_services_satisfies_every_protocol(tmp_path: Path):
    found = protocols()
    imports = "".join(f"import {module}\n" for module in found)
    assigned = "".join(
        f"    _{module.rsplit('.', 1)[1]}_{name}: {module}.{name} = services\n"
        for module, names in found.items()
        for name in names
    )
    (tmp_path / "fits.py").write_text(
        f"from app.services import Services\n{imports}\n\ndef fits(services: Services) -> None:\n{assigned}"
    )
    (tmp_path / "leak.py").write_text(
        textwrap.dedent(
            """
            from nodes.needs import Prompting


            def leak(services: Prompting) -> object:
                return services.escalations
            """
        )
    )
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mypy"), str(tmp_path / "fits.py"), str(tmp_path / "leak.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout + done.stderr
    assert "leak.py:6: error:" in errors[0] and '"Prompting" has no attribute "escalations"' in errors[0]
    assert len(found) >= 8 and assigned.count("= services") >= 10  # the planted module covers the protocols
