"""``firebreak eval SUITE``: the one command that runs the harness (no other part of a face imports ``evals``).

Every suite prints its scenarios (or one JSON report with --json) and exits 1 if any failed. A suite takes
--json and the options SUITE_OPTIONS names for it; any other option is refused, as an unknown option is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import ConfigOption, JsonOption, echo_json, settings_of
from core.errors import FirebreakError

commands = typer.Typer()


class Suite(StrEnum):
    """The suites, in the order `firebreak eval --help` lists them."""

    GATE = "gate"
    CACHE = "cache"
    CONTAINMENT = "containment"
    STATE = "state"
    OPERATIONS = "operations"
    SECURITY = "security"
    RESILIENCE = "resilience"
    QUALITY = "quality"
    ALL = "all"


# What each suite takes besides --json (a suite not named here takes nothing else).
SUITE_OPTIONS: dict[Suite, frozenset[str]] = {
    Suite.GATE: frozenset({"--route", "--config"}),
    Suite.CACHE: frozenset({"--dataset", "--route", "--config"}),
    Suite.QUALITY: frozenset({"--model", "--dataset", "--min-score", "--config"}),
    Suite.ALL: frozenset({"--suite", "--out"}),
}


@dataclass(frozen=True)
class Asked:
    """What the command line asked of a suite."""

    suite: Suite
    as_json: bool
    config: Path | None = None
    route: str | None = None
    dataset: Path | None = None
    model: str | None = None
    min_score: float | None = None
    suites: list[str] | None = None
    out: Path | None = None

    def refuse_foreign_options(self) -> None:
        """Refuse an option the suite does not take, before anything runs."""
        given = {
            "--config": self.config is not None,
            "--route": self.route is not None,
            "--dataset": self.dataset is not None,
            "--model": self.model is not None,
            "--min-score": self.min_score is not None,
            "--suite": bool(self.suites),
            "--out": self.out is not None,
        }
        takes = SUITE_OPTIONS.get(self.suite, frozenset())
        foreign = [option for option, present in given.items() if present and option not in takes]
        if foreign:
            raise FirebreakError(f"eval {self.suite} takes no {', '.join(foreign)} option")


@commands.command("eval", no_args_is_help=True)
def run_eval(
    suite: Annotated[Suite, typer.Argument(metavar="SUITE", help="The suite to run, or all of them.")],
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            help="cache: your own pairs, JSONL with cached, query, same (and optional kind, tenant); "
            "quality: your own cases, a TOML file like evals/data/quality.toml.",
        ),
    ] = None,
    route: Annotated[
        str | None, typer.Option("--route", help="gate: only this route's decisions; cache: use its thresholds.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="quality: a route (e.g. chat, the local model) or a model; default: the scripted model.",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            min=0.0,
            max=1.0,
            help="quality: fail below this score; default: the route's committed baseline.",
        ),
    ] = None,
    suites: Annotated[
        list[str] | None, typer.Option("--suite", help="all: only this suite (repeatable); default: every suite.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="all: report folder; default: evals/reports.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an evaluation suite, or all of them: every scenario measured; exit 1 if any fails.

    gate: the confidence gate's calibration from its stored outcomes
    cache: precision and recall through the real cache
    containment: the $200 and production-mutation stories
    state: 200 turns, replanning, three agents on one ticket
    operations: canary rollouts over simulated traffic
    security: every guard on every entry path, attacked
    resilience: the dead-API story
    quality: task cases through the real agent
    all: every suite, with quality_embedded and quality_embedded_frozen (the quality cases and the frozen
    test split on the embedded model); latest.json, latest.md and plots in evals/reports
    """
    asked = Asked(suite, as_json, config, route, dataset, model, min_score, suites, out)
    asked.refuse_foreign_options()
    RUNNERS.get(suite, _scenarios)(asked)


def _scenarios(asked: Asked) -> None:
    """A suite that takes no option of its own: ``evals.<suite>.main()`` returns its report."""
    _print_suite(import_module(f"evals.{asked.suite}").main(), asked.as_json)


def _print_suite(report: dict[str, Any], as_json: bool) -> None:
    """Print a suite's report, one line per scenario (or the JSON); exit 1 unless it passed."""
    if as_json:
        echo_json(report)
    else:
        for scenario in report["scenarios"]:
            figures = ", ".join(f"{k}={v}" for k, v in scenario.items() if k not in ("name", "passed"))
            typer.echo(f"{'pass' if scenario['passed'] else 'FAIL'}  {scenario['name']}: {figures}")
    if not report["passed"]:
        raise typer.Exit(1)


def _gate(asked: Asked) -> None:
    """Calibration of the confidence gate from its stored scores and outcomes: how often each band was right."""
    from app.services import open_stores
    from evals.gate import calibration

    settings = settings_of(asked.config)
    # Bands are recorded with each decision; the thresholds shown are the route's, or the defaults.
    thresholds = settings.gate.for_route(asked.route) if asked.route else settings.gate
    report = calibration(open_stores(settings).gate.all(route=asked.route), thresholds)
    if asked.as_json:
        echo_json(report)
        return
    for band in report["bands"]:
        accuracy = "—" if band["accuracy"] is None else f"{band['accuracy']:.0%}"
        typer.echo(
            f"{band['band']:<8} {band['range']:<12} decisions={band['decisions']:<5} "
            f"with outcome={band['with_outcome']:<5} right={band['right']:<5} accuracy={accuracy}"
        )
    typer.echo(report["advice"])


def _cache(asked: Asked) -> None:
    """Precision and recall of the semantic cache through the real cache: dev split, frozen test split, public sets."""
    from evals.cache_pairs import DatasetError
    from evals.cache_suite import main as run_cache_eval

    try:
        report = run_cache_eval(settings_of(asked.config), asked.dataset, route=asked.route)
    except (DatasetError, FileNotFoundError) as exc:
        raise FirebreakError(str(exc)) from None
    if asked.as_json:
        echo_json(report)
    else:
        targets = report["targets"]
        typer.echo(f"route {report['route']}; targets: precision {targets['precision']:g} recall {targets['recall']:g}")
        parts = (
            {report["dataset"]: report}
            if asked.dataset is not None
            else {"dev": report["dev"], "test (frozen)": report["test"]}
            | {f"public {name}": part for name, part in report["public"].items()}
        )
        for name, part in parts.items():
            _echo_cache_part(name, part)
        if asked.dataset is None:
            calibration = report["calibration"]
            shipped, fitted = calibration["shipped"], calibration["fitted_on_dev"]
            typer.echo(f"verifier calibration: shipped {shipped}, fitted on dev {fitted}")
            if not report["test"]["frozen"]:
                typer.echo(f"the test split changed (SHA-256 {report['test']['sha256'][:12]}…): it is no longer frozen")
    if not report["passed"]:
        raise typer.Exit(1)


def _echo_cache_part(name: str, part: dict[str, Any]) -> None:
    default = part["default"]
    verdict = "meets the targets" if part["meets_targets"] else "MISSES the targets"
    typer.echo(
        f"{name}: {part['pairs']} pairs  precision {default['precision']:.3f}  recall {default['recall']:.3f}  "
        f"tp={default['tp']} fp={default['fp']} fn={default['fn']} tn={default['tn']} unsure={default['unsure']}  "
        f"{verdict}"
    )
    stages = (f"{row['stage']} {row['precision']:.3f}/{row['recall']:.3f}" for row in part["stages"])
    typer.echo("  stages (precision/recall): " + "  ".join(stages))
    for kind, count in default["false_hits_by_kind"].items():
        if count:
            typer.echo(f"  false hits ({kind}): {count}")
    if part["cross_tenant"]["hits"]:
        typer.echo(f"  cross-tenant hits: {part['cross_tenant']['hits']}")


def _quality(asked: Asked) -> None:
    """Task cases (tools, multi-step, refusals, escalations) through the real agent: each expectation scored."""
    from evals.quality import CaseError
    from evals.quality import main as run_quality

    try:
        report = run_quality(asked.config, route=asked.model, dataset=asked.dataset, min_score=asked.min_score)
    except (CaseError, FileNotFoundError) as exc:
        raise FirebreakError(str(exc)) from None
    if not asked.as_json:
        kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in report["score_by_kind"].items())
        skipped = f"; skipped (no script): {', '.join(report['skipped'])}" if report["skipped"] else ""
        typer.echo(f"{report['model']}: score {report['score']:.0%} of cases ({kinds}){skipped}")
    typer.echo(report["verdict"], err=asked.as_json or not report["passed"])
    _print_suite(report, asked.as_json)


def _all(asked: Asked) -> None:
    """Every suite in one run: writes latest.json, latest.md and plots (PNG) to evals/reports."""
    from evals.all import REPORTS, UnknownSuite, as_one_suite
    from evals.all import main as run_all

    folder = asked.out or REPORTS
    try:
        summary = run_all(asked.suites, folder)
    except UnknownSuite as exc:
        raise FirebreakError(str(exc)) from None
    typer.echo(f"report: {folder / 'latest.md'}", err=True)
    _print_suite(summary if asked.as_json else as_one_suite(summary), asked.as_json)


RUNNERS: dict[Suite, Callable[[Asked], None]] = {
    Suite.GATE: _gate,
    Suite.CACHE: _cache,
    Suite.QUALITY: _quality,
    Suite.ALL: _all,
}
