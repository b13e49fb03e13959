"""``firebreak eval all`` / ``make eval``: every suite, timed, in one report (``evals/reports/latest.*``).

Each suite keeps its own command and shape; here they are only run in order and gathered. The cache eval
reports precision and recall rather than scenarios, so :func:`cache_suite` restates its targets as scenarios
(the same verdicts its ``passed`` already combines), and every suite then reads alike in the report.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.machine import machine
from evals.scenario import Scenario, file_sha256, suite_report

REPORTS = Path(__file__).resolve().parent / "reports"
SuiteRunner = Callable[[], dict[str, Any]]


class UnknownSuite(ValueError):
    """A suite name that is not in :data:`SUITES`; raised before any suite runs."""


def cache_scenarios(report: dict[str, Any], where: str = "at_default_thresholds") -> list[Scenario]:
    """One file's cache eval (a split, a public set or a user's file) as scenarios, each with its figure."""
    default, targets, cross = report["default"], report["targets"], report["cross_tenant"]
    counts = {key: default[key] for key in ("tp", "fp", "fn", "tn", "unsure")}
    return [
        Scenario(
            f"precision_{where}",
            default["precision"] >= targets["precision"],
            {"precision": default["precision"], "target": targets["precision"], **counts},
        ),
        Scenario(
            f"recall_{where}",
            default["recall"] >= targets["recall"],
            {"recall": default["recall"], "target": targets["recall"], "pairs": report["pairs"]},
        ),
        Scenario(
            f"no_cross_tenant_hits{'' if where == 'at_default_thresholds' else '_' + where}",
            cross["hits"] == 0,
            {"hits": cross["hits"], "probes": cross["probes"]},
        ),
        Scenario(
            f"eval_agrees_with_cache{'' if where == 'at_default_thresholds' else '_' + where}",
            report["agrees_with_cache"],
            {"agrees": report["agrees_with_cache"]},
        ),
    ]


def cache_suite() -> dict[str, Any]:
    """The targets on the frozen test split and on each public set; the dev split is where they were tuned."""
    from core.config import load_settings
    from evals.cache_suite import main as run_cache_eval

    report = run_cache_eval(load_settings())
    targets = report["targets"]
    test = report["test"]
    scenarios = [
        Scenario("test_split_frozen", test["frozen"], {"sha256": test["sha256"]}),
        *cache_scenarios(test | {"targets": targets}, "on_frozen_test_split"),
    ]
    for name, part in report["public"].items():
        scenarios += cache_scenarios(part | {"targets": targets}, f"on_public_{name}")[:2]
    return suite_report("cache", scenarios)


def embedded_quality_suite(dataset: Path | None = None, suite: str = "quality_embedded") -> dict[str, Any]:
    """The quality cases on the embedded model (route ``chat``), gated by the baseline the dataset commits for it.

    The ``quality`` suite runs the scripted model, whose scripts hold the expected answers; this one is the score
    a user of the shipped model gets.
    """
    from evals.quality import EMBEDDED_ROUTE
    from evals.quality import main as run_quality

    return {**run_quality(route=EMBEDDED_ROUTE, dataset=dataset), "suite": suite}


def frozen_quality_suite(dataset: Path | None = None) -> dict[str, Any]:
    """The frozen test split on the embedded model: its file must be the pinned one, its score reach its baseline."""
    from evals.quality import FROZEN_TEST, FROZEN_TEST_SHA256

    path = dataset or FROZEN_TEST
    digest = file_sha256(path)
    frozen = Scenario("test_split_frozen", digest == FROZEN_TEST_SHA256, {"sha256": digest})
    report = embedded_quality_suite(path, "quality_embedded_frozen")
    return report | {
        "passed": frozen.passed and report["passed"],
        "scenarios": [frozen.as_dict(), *report["scenarios"]],
    }


def _suite(module: str) -> SuiteRunner:
    """A suite whose module's ``main()`` returns its report; imported when run, so a suite's heavy stack
    (torch, worker processes) loads only if that suite is asked for."""

    def run() -> dict[str, Any]:
        result: dict[str, Any] = importlib.import_module(module).main()
        return result

    return run


SUITES: dict[str, SuiteRunner] = {
    "resilience": _suite("evals.resilience"),
    "containment": _suite("evals.containment"),
    "cache": cache_suite,
    "state": _suite("evals.state"),
    "operations": _suite("evals.operations"),
    "quality": _suite("evals.quality"),
    "quality_embedded": embedded_quality_suite,
    "quality_embedded_frozen": frozen_quality_suite,
    "security": _suite("evals.security"),
}


def run_suites(names: Sequence[str], suites: dict[str, SuiteRunner] = SUITES) -> dict[str, Any]:
    """Run ``names`` in order; the summary is passed only if every suite is."""
    unknown = [name for name in names if name not in suites]
    if unknown:
        raise UnknownSuite(f"unknown suite {unknown[0]!r}; known: {list(suites)}")
    reports = []
    for name in names:
        started = time.perf_counter()
        report = suites[name]()
        reports.append({**report, "seconds": round(time.perf_counter() - started, 1)})
    return {
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "passed": all(report["passed"] for report in reports),
        "suites": reports,
    }


def main(names: Sequence[str] | None = None, out_dir: Path = REPORTS) -> dict[str, Any]:
    """Run the suites (all by default) and write ``latest.json``, ``latest.md`` and the plots to ``out_dir``."""
    from evals.report import write_report

    summary = run_suites(list(names or SUITES))
    write_report(summary, out_dir)
    return summary


def as_one_suite(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary in a single suite's shape, each scenario named ``suite/scenario``: what ``eval all`` prints."""
    scenarios = [
        {**scenario, "name": f"{report['suite']}/{scenario['name']}"}
        for report in summary["suites"]
        for scenario in report["scenarios"]
    ]
    return {"suite": "all", "passed": summary["passed"], "scenarios": scenarios}
