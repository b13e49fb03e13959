"""``firebreak eval security``: every guard tried on the paths users and attackers take (issue 16).

Each module of this package measures one family of bypasses and exposes ``scenarios(folder)``, a list of
:class:`~evals.scenario.Scenario` built on real databases, the real graph and the scripted model (the
edge of the world). The suite passes only if every scenario does.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from evals.scenario import Scenario, suite_report

# One module per family of guards; each is imported only when the suite runs.
MODULES = (
    "evals.security.cache",
    "evals.security.stream",
    "evals.security.requests",
    "evals.security.failures",
    "evals.security.injection",
)


def main() -> dict[str, Any]:
    """Run every scenario, each family in a folder of its own, and report them as one suite."""
    scenarios: list[Scenario] = []
    with tempfile.TemporaryDirectory(prefix="firebreak-security-") as root:
        for name in MODULES:
            folder = Path(root) / name.rsplit(".", 1)[-1]
            folder.mkdir()
            scenarios += importlib.import_module(name).scenarios(folder)
    return suite_report("security", scenarios)
