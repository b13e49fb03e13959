"""The architecture's rules, each proven able to fail on a planted module.

No side door: only ``app/gateway`` talks to model providers. Every model call must pass the gateway's breakers,
budgets, rate limits, audit rows and spans, so nothing else in the product may import LiteLLM or a provider SDK, or
read a provider's API key.

One-way floors: ground (``core``) < ``memory`` < services (``app``) < ``graph`` and ``nodes`` < faces (``ui``,
``cli``) < the harness (``evals``); nothing imports a floor above its own (docs/architecture.md).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("core", "memory", "app", "graph", "nodes", "ui", "cli", "firebreak", "evals")
GATEWAY = ROOT / "app" / "gateway"
PROVIDER_PACKAGES = frozenset(
    {"litellm", "openai", "anthropic", "google.generativeai", "google.genai", "mistralai", "cohere", "groq"}
)
KEY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*_(API_KEY|API_TOKEN|SECRET_ACCESS_KEY)$")
# Benchmarks measure the provider itself and a raw LangGraph loop, with no Firebreak in between: that is
# their point. They never run in the product.
MEASURED_WITHOUT_THE_GATEWAY = frozenset({ROOT / "evals" / "bench_model.py", ROOT / "evals" / "bench_overhead.py"})


def side_doors(path: Path, root: Path = ROOT) -> list[str]:
    """What in one module bypasses the gateway: provider imports and provider key names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if any(name == package or name.startswith(f"{package}.") for package in PROVIDER_PACKAGES):
                found.append(f"{path.relative_to(root)}:{node.lineno} imports {name}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_NAME.match(node.value):
            found.append(f"{path.relative_to(root)}:{node.lineno} names the provider key {node.value}")
    return found


def product_modules() -> list[Path]:
    return [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]


def test_nothing_outside_the_gateway_imports_a_provider_or_reads_its_key():
    outside = [
        path for path in product_modules() if GATEWAY not in path.parents and path not in MEASURED_WITHOUT_THE_GATEWAY
    ]

    assert len(outside) > 50  # the scan really covers the product
    assert [door for path in outside for door in side_doors(path)] == []


def test_the_scan_finds_a_provider_import_and_a_key_read(tmp_path):
    module = tmp_path / "sneaky.py"
    module.write_text(
        "import os\nfrom openai import OpenAI\nimport litellm.router\nkey = os.environ['OPENAI_API_KEY']\n"
    )

    assert side_doors(module, root=tmp_path) == [
        "sneaky.py:2 imports openai",
        "sneaky.py:3 imports litellm.router",
        "sneaky.py:4 names the provider key OPENAI_API_KEY",
    ]


# --- Layers that point one way -------------------------------------------------------------------------------------
# Firebreak is a house of floors (docs/architecture.md): each floor stands on the ones below it and never reaches
# up, so a floor can be read, tested and replaced knowing only what lies beneath it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("core",),  # ground: the error tree, settings types, run statuses
    ("memory",),  # stores and tables
    ("app",),  # services: gateway, resilience, limits, containment, cache, planning, canary, tools, telemetry
    ("graph", "nodes"),  # the state machine, its nodes, the worker and the team that drive it
    ("ui", "cli", "firebreak"),  # faces: the web UI, the command line, the Python API
    ("evals",),  # the harness: drives the faces to measure and attack them
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}
# A node reads the state it is given and the services it is handed; the machine that runs it is not its business.
MACHINE = frozenset({"graph.agent", "graph.builder", "graph.team", "graph.worker", "graph.answers", "graph.sweeper"})
# The one command that runs the harness; no other part of a face may know it exists.
EVAL_COMMANDS = "cli/evals.py"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in a module, anywhere in it (functions and TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def upward_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Imports from a floor above the module's own."""
    where = path.relative_to(root)
    own = FLOOR[where.parts[0]]
    found: dict[tuple[int, str], str] = {}
    for line, name in imports_of(path):
        top = name.split(".")[0]
        target = FLOOR.get(top)
        if target is None or target <= own or (where.as_posix() == EVAL_COMMANDS and top == "evals"):
            continue
        found.setdefault((line, top), f"{where}:{line} imports {name} from a floor above")
    return list(found.values())


def machine_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Imports of the graph's machinery from a node."""
    where = path.relative_to(root)
    if where.parts[0] != "nodes":
        return []
    return [
        f"{where}:{line} imports {name}: nodes never import the machine that runs them"
        for line, name in imports_of(path)
        if any(name == module or name.startswith(f"{module}.") for module in MACHINE)
    ]


def face_to_face_imports(path: Path, root: Path = ROOT) -> list[str]:
    """The web UI importing the CLI (the CLI may start the UI, never the other way round), or the Python API
    importing either (it calls what they call, below them)."""
    where = path.relative_to(root)
    found = []
    for line, name in imports_of(path):
        top = name.split(".")[0]
        if where.parts[0] == "ui" and top == "cli":
            found.append(f"{where}:{line} imports {name}: the web UI never imports the CLI")
        if where.parts[0] == "firebreak" and top in ("ui", "cli"):
            found.append(f"{where}:{line} imports {name}: the Python API never imports another face")
    return found


def own_composition(path: Path, root: Path = ROOT) -> list[str]:
    """A face opening its own database or wiring its own stores instead of asking the composition root."""
    where = path.relative_to(root)
    if where.parts[0] not in ("ui", "cli", "firebreak"):
        return []
    return [
        f"{where}:{line} imports {name}: faces get their stores from app.services"
        for line, name in imports_of(path)
        if name in ("memory.engine", "memory.migrate") or name.startswith(("memory.engine.", "memory.migrate."))
    ]


def example_imports(path: Path, root: Path = ROOT) -> list[str]:
    """The product importing the deletable example: only the harness (its stories are the demo's) may."""
    where = path.relative_to(root)
    if where.parts[0] == "evals":
        return []
    found: dict[int, str] = {}
    for line, name in imports_of(path):
        if name.split(".")[0] == "examples":
            found.setdefault(line, f"{where}:{line} imports {name}: the example stays deletable: configure it")
    return list(found.values())


# Where a tool's function may be called (the runner's timeout wrapper) and where a Tool may be built (the `@tool`
# decorator and `external_tool`, which every LangChain and MCP tool goes through): a tool called or built anywhere
# else would skip the runner's timeouts, breakers, idempotency, budgets, gate and spans, or the schema check.
CALLS_TOOL_FUNCTIONS = frozenset({"app/tools/timeouts.py"})
BUILDS_TOOLS = frozenset({"app/tools/registry.py"})


def tool_side_doors(path: Path, root: Path = ROOT) -> list[str]:
    """A tool's function called, or a Tool built by hand, outside the one place for each. The harness is exempt:
    its baselines (the raw loop's direct tool call) measure what the guards cost by going around them."""
    where = path.relative_to(root).as_posix()
    if where.startswith("evals/"):
        return []
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "fn" and where not in CALLS_TOOL_FUNCTIONS | BUILDS_TOOLS:
            found.append(f"{where}:{node.lineno} reads a tool's function: only the tool runner calls it")
        if isinstance(node, ast.Call) and where not in BUILDS_TOOLS:
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if callee == "Tool":
                found.append(f"{where}:{node.lineno} builds a Tool by hand: use @tool or external_tool")
    return found


RULES = {
    "no floor imports a floor above it": upward_imports,
    "tools are built and called in one place each": tool_side_doors,
    "nodes never import the graph's machinery": machine_imports,
    "the web UI never imports the CLI": face_to_face_imports,
    "faces never open their own database": own_composition,
    "nothing but the harness imports the example": example_imports,
}


def test_every_product_package_has_a_floor():
    assert {path.relative_to(ROOT).parts[0] for path in product_modules()} <= set(FLOOR)
    assert set(PRODUCT) == set(FLOOR)


@pytest.mark.parametrize("rule", RULES)
def test_the_layer_rule_holds(rule):
    assert [broken for path in product_modules() for broken in RULES[rule](path)] == []


PLANTED = {
    "no floor imports a floor above it": ("memory/sneaky.py", "from app.canary.release import ReleaseSpec\n"),
    "tools are built and called in one place each": (
        "app/tools/sneaky.py",
        "async def direct(item, arguments):\n    return await item.fn(**arguments)\n",
    ),
    "nodes never import the graph's machinery": ("nodes/sneaky.py", "def f():\n    from graph.agent import Agent\n"),
    "the web UI never imports the CLI": ("ui/sneaky.py", "import cli.main\n"),
    "faces never open their own database": ("cli/sneaky.py", "from memory.engine import make_engine\n"),
    "nothing but the harness imports the example": ("app/sneaky.py", "from examples.support_desk import tools\n"),
}


@pytest.mark.parametrize("rule", RULES)
def test_the_layer_rule_finds_a_planted_violation(rule, tmp_path):
    relative, source = PLANTED[rule]
    module = tmp_path / relative
    module.parent.mkdir(parents=True)
    module.write_text(source)

    assert len(RULES[rule](module, root=tmp_path)) >= 1


def test_a_lower_floor_importing_a_higher_one_under_type_checking_still_counts(tmp_path):
    module = tmp_path / "app" / "sneaky.py"
    module.parent.mkdir()
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from graph.agent import Agent\n")

    assert upward_imports(module, root=tmp_path) == ["app/sneaky.py:3 imports graph.agent from a floor above"]


def test_the_python_api_importing_the_cli_counts_as_a_face_to_face_import(tmp_path):
    module = tmp_path / "firebreak" / "sneaky.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from cli.access import reader_of\n")

    assert face_to_face_imports(module, root=tmp_path) == [
        "firebreak/sneaky.py:2 imports cli.access: the Python API never imports another face",
        "firebreak/sneaky.py:2 imports cli.access.reader_of: the Python API never imports another face",
    ]


def test_a_tool_built_by_hand_outside_the_registry_counts_as_a_side_door(tmp_path):
    module = tmp_path / "app" / "tools" / "mcp_shortcut.py"
    module.parent.mkdir(parents=True)
    module.write_text("from app.tools.registry import Tool\n\ndef make(**fields):\n    return Tool(**fields)\n")

    assert tool_side_doors(module, root=tmp_path) == [
        "app/tools/mcp_shortcut.py:4 builds a Tool by hand: use @tool or external_tool"
    ]


SERVER_FACTORY = ROOT / "graph" / "server.py"
# What a LangGraph Server run may not reach past the Agent: the nodes, the gateway, the tool runner, a provider.
AROUND_THE_AGENT = ("nodes", "app.gateway", "app.tools", "litellm", "llama_cpp")


def server_side_doors(path: Path) -> list[str]:
    """Imports by which the LangGraph Server's graph could run a step without the Agent's run."""
    found: dict[int, str] = {}
    for line, name in imports_of(path):
        if any(name == prefix or name.startswith(f"{prefix}.") for prefix in AROUND_THE_AGENT):
            found.setdefault(line, f"{path.name}:{line} imports {name}: a server run goes through graph.agent.Agent")
    return list(found.values())


def test_a_langgraph_server_run_reaches_the_guards_only_through_the_agent():
    assert ("graph.agent", "Agent") in {
        (name.rpartition(".")[0], name.rpartition(".")[2]) for _, name in imports_of(SERVER_FACTORY)
    }
    assert server_side_doors(SERVER_FACTORY) == []


def test_a_server_graph_calling_a_node_directly_counts_as_a_side_door(tmp_path):
    module = tmp_path / "server.py"
    module.write_text("from nodes.act import act\n")

    assert server_side_doors(module) == ["server.py:1 imports nodes.act: a server run goes through graph.agent.Agent"]
