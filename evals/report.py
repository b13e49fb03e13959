"""The eval report: ``latest.json`` (everything), ``latest.md`` (readable) and PNG plots, in one folder.

Each scenario is plotted by its *key figure*, the one its verdict hinges on, against the bound it must keep
(``dead_api_backend_calls`` ≤ 10, ``precision`` ≥ 0.97, ...), so the plot shows which pattern holds and by
how much, not only a tick. Scenarios not listed in :data:`KEY_FIGURES` show their first numeric figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or a server
import matplotlib.pyplot as plt

PASS_COLOUR, FAIL_COLOUR = "#2e7d32", "#c62828"
FIGURES_SHOWN = 320  # characters of a scenario's figures in the markdown table; latest.json has them all


@dataclass(frozen=True)
class KeyFigure:
    figure: str
    limit: float | str | None = None  # a number, or the name of the figure that holds the bound
    at_least: bool = False  # the figure must reach the limit (precision), else stay at or below it (overshoot)


KEY_FIGURES = {
    "dead_tool_4000_requests": KeyFigure("dead_api_backend_calls", 10),
    "dead_model_4000_requests": KeyFigure("dead_api_backend_calls", 10),
    "workers_killed_mid_run": KeyFigure("lost_runs", 0),
    "runaway_spend_one_request": KeyFigure("max_request_cost_usd", "cap_usd"),
    "runaway_spend_two_workers_one_tenant": KeyFigure("tenant_cost_usd", "day_cap_usd"),
    "production_mutation": KeyFigure("unapproved_writes", 0),
    "precision_on_frozen_test_split": KeyFigure("precision", "target", at_least=True),
    "recall_on_frozen_test_split": KeyFigure("recall", "target", at_least=True),
    "precision_on_public_stsb": KeyFigure("precision", "target", at_least=True),
    "recall_on_public_stsb": KeyFigure("recall", "target", at_least=True),
    "no_cross_tenant_hits_on_frozen_test_split": KeyFigure("hits", 0),
    "long_conversation_200_turns": KeyFigure("max_context_tokens", "window_tokens"),
    "replan_pricing_api_down": KeyFigure("replans", 1),
    "three_agents_one_ticket": KeyFigure("lost_updates", 0),
    "bad_release_rolled_back": KeyFigure("bad_release_share_after_rollback", 0),
    "cheaper_release_promoted": KeyFigure("cost_ratio_canary_to_control", 1),
    "cross_user_cache": KeyFigure("cross_user_hits", 0),
    "degraded_answer_cached": KeyFigure("degraded_answers_stored", 0),
    "streamed_policy_violation": KeyFigure("unscreened_chars_shown", 0),
    "idempotency_key_resubmit": KeyFigure("duplicate_side_effects", 0),
    "failed_run_visibility": KeyFigure("unreachable_failed_runs", 0),
    "escalation_expiry_unattended": KeyFigure("expired_late", 0),
    "team_default_config": KeyFigure("silent_stalls", 0),
    "injected_writes": KeyFigure("injected_writes_executed", 0),
}
# Quality cases are named by whoever writes them: every case is judged on its share of checks passed.
CASE_SCORE = KeyFigure("score", 1, at_least=True)  # a quality case: the share of its checks that held
SUITE_KEY_FIGURES = {"quality": CASE_SCORE, "quality_embedded": CASE_SCORE, "quality_embedded_frozen": CASE_SCORE}
SUITE_FIELDS = {"suite", "passed", "scenarios", "seconds"}  # the rest of a suite's report is shown as its notes


@dataclass(frozen=True)
class Shown:
    """A scenario's key figure, resolved: its value as a number for the plot and its bound."""

    figure: str
    value: Any
    limit: float | None
    at_least: bool

    @property
    def number(self) -> float:
        return float(self.value) if isinstance(self.value, int | float) else 0.0

    def label(self) -> str:
        bound = "" if self.limit is None else f" ({'≥' if self.at_least else '≤'} {self.limit:g})"
        return f"{self.figure} = {_value(self.value)}{bound}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float)  # bools too: a yes/no figure plots as 1/0


def key_figure(suite: str, scenario: dict[str, Any]) -> Shown:
    spec = KEY_FIGURES.get(scenario["name"]) or SUITE_KEY_FIGURES.get(suite)
    if spec is None or spec.figure not in scenario:
        numeric = [key for key, value in scenario.items() if key not in ("name", "passed") and _numeric(value)]
        spec = KeyFigure(numeric[0] if numeric else "passed")
    limit = scenario.get(spec.limit) if isinstance(spec.limit, str) else spec.limit
    return Shown(spec.figure, scenario[spec.figure], None if limit is None else float(limit), spec.at_least)


# -- plots --------------------------------------------------------------------------------------------------------


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"


def _colour(passed: bool) -> str:
    return PASS_COLOUR if passed else FAIL_COLOUR


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_suite(report: dict[str, Any], path: Path) -> None:
    """One row per scenario: its key figure as a bar, its bound as a dashed line, green if it passed."""
    scenarios = report["scenarios"]
    figure, axes = plt.subplots(len(scenarios), 1, figsize=(8, 0.2 + 0.75 * len(scenarios)), squeeze=False)
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        shown = key_figure(report["suite"], scenario)
        ax.barh([0], [shown.number], color=_colour(scenario["passed"]), height=0.6)
        if shown.limit is not None:
            ax.axvline(shown.limit, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(shown.number, shown.limit or 0.0) * 1.25 or 1.0)  # a zero bound at zero: still an axis
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7)
        title = f"{_verdict(scenario['passed'])}  {scenario['name']}: {shown.label()}"
        ax.set_title(title, loc="left", fontsize=8, color=_colour(scenario["passed"]))
    _save(figure, path)


def plot_summary(summary: dict[str, Any], path: Path) -> None:
    """One bar per suite: the share of its scenarios that passed (green) and failed (red), its count and time."""
    suites = summary["suites"]
    figure, ax = plt.subplots(figsize=(8, 0.6 + 0.5 * len(suites)))
    names = [report["suite"] for report in suites]
    totals = [max(len(report["scenarios"]), 1) for report in suites]
    passed = [sum(s["passed"] for s in report["scenarios"]) for report in suites]
    shares = [count / total for count, total in zip(passed, totals, strict=True)]
    ax.barh(names, shares, color=PASS_COLOUR)
    ax.barh(names, [1 - share for share in shares], left=shares, color=FAIL_COLOUR)
    for row, report in enumerate(suites):
        label = f"{passed[row]}/{len(report['scenarios'])} passed, {report['seconds']:g} s"
        ax.text(0.02, row, label, va="center", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_xlim(0, 1)
    ax.invert_yaxis()  # suites top to bottom in the order they ran
    ax.set_xlabel("share of scenarios passed")
    ax.set_title(f"Firebreak evals, {summary['generated_at']}: {'all pass' if summary['passed'] else 'FAILED'}")
    _save(figure, path)


# -- markdown -----------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _figures(scenario: dict[str, Any]) -> str:
    text = ", ".join(f"{key}={_value(value)}" for key, value in scenario.items() if key not in ("name", "passed"))
    return _cell(text if len(text) <= FIGURES_SHOWN else text[: FIGURES_SHOWN - 1] + "…")


def _counts(report: dict[str, Any]) -> str:
    return f"{sum(s['passed'] for s in report['scenarios'])}/{len(report['scenarios'])}"


def _suite_section(report: dict[str, Any]) -> list[str]:
    suite = report["suite"]
    lines = [
        f"## {suite}: {_verdict(report['passed'])} ({_counts(report)} scenarios, {report['seconds']:g} s)",
        "",
        f"![{suite}]({suite}.png)",
        "",
    ]
    notes = {key: value for key, value in report.items() if key not in SUITE_FIELDS}
    lines += [f"- {key}: {_cell(_value(value))}" for key, value in notes.items()] + ([""] if notes else [])
    lines += ["| scenario | verdict | key figure | figures |", "|---|---|---|---|"]
    for scenario in report["scenarios"]:
        shown = key_figure(suite, scenario)
        lines.append(
            f"| {scenario['name']} | {_verdict(scenario['passed'])} | {_cell(shown.label())} | {_figures(scenario)} |"
        )
    return [*lines, ""]


def markdown(summary: dict[str, Any]) -> str:
    failed = [report["suite"] for report in summary["suites"] if not report["passed"]]
    lines = [
        "# Firebreak eval report",
        "",
        f"Generated {summary['generated_at']} on {summary['machine']} by `make eval` (`firebreak eval all`). "
        f"Verdict: **{'every suite passes' if not failed else 'failed: ' + ', '.join(failed)}**. "
        "Each plot shows a scenario's key figure (bar) against the bound it must keep (dashed line).",
        "",
        "![summary](summary.png)",
        "",
        "| suite | verdict | scenarios passed | time |",
        "|---|---|---|---|",
        *(f"| {r['suite']} | {_verdict(r['passed'])} | {_counts(r)} | {r['seconds']:g} s |" for r in summary["suites"]),
        "",
    ]
    for report in summary["suites"]:
        lines += _suite_section(report)
    return "\n".join(lines)


def write_report(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write latest.json, latest.md, summary.png and SUITE.png into ``out_dir``; return the markdown's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    plot_summary(summary, out_dir / "summary.png")
    for report in summary["suites"]:
        plot_suite(report, out_dir / f"{report['suite']}.png")
    path = out_dir / "latest.md"
    path.write_text(markdown(summary), encoding="utf-8")
    return path
