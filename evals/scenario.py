"""What every eval suite shares: a scenario's verdict and figures, and a clock the scenario moves by hand."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SimulatedTime:
    """A wall clock the scenario moves by hand; sleeping advances it instead of waiting."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Scenario:
    name: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, **self.figures}


def suite_report(suite: str, scenarios: list[Scenario]) -> dict[str, Any]:
    """A suite's report as ``firebreak eval SUITE --json`` prints it: passed only if every scenario did."""
    return {"suite": suite, "passed": all(s.passed for s in scenarios), "scenarios": [s.as_dict() for s in scenarios]}


def file_sha256(path: Path) -> str:
    """The file's SHA-256: what a frozen test split is pinned by."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
