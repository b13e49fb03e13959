"""No side door: only ``app/gateway`` talks to model providers.

Every model call must pass the gateway's breakers, budgets, rate limits, audit rows and spans, so nothing
else in the product may import LiteLLM or a provider SDK, or read a provider's API key.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app", "graph", "nodes", "memory", "ui", "evals")
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
