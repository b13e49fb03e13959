"""A rollout as the CLI and the Canary tab show it: both arms side by side, the step's analysis, the history."""

from __future__ import annotations

from typing import Any

from app.canary.analysis import analyze
from app.canary.controller import Canary
from memory.tables import Rollout

LIVE = ("running", "paused")


def rollout_report(canary: Canary, rollout_id: int | None = None) -> dict[str, Any]:
    """The stable release and one rollout (the active one, else the latest): plain data for ``--json``."""
    store = canary.store
    rollout = store.get(rollout_id) if rollout_id is not None else store.active() or next(iter(store.latest(1)), None)
    return {"stable": canary.stable().name, "rollout": _rollout(canary, rollout) if rollout else None}


def _rollout(canary: Canary, rollout: Rollout) -> dict[str, Any]:
    assert rollout.id is not None
    step = canary.analysis(rollout) if rollout.status in LIVE else None
    # The whole rollout's runs, both arms: analysed as one window only to summarise each arm side by side.
    overall = analyze(canary.samples(rollout.id), canary.settings.canary, rollout.step)
    return {
        "id": rollout.id,
        "release": rollout.release,
        "control": rollout.control,
        "status": rollout.status,
        "weight": rollout.steps[rollout.step],
        "steps": rollout.steps,
        "step": rollout.step,
        "reason": rollout.reason,
        "started_by": rollout.started_by,
        "started_at": rollout.started_at,
        "ended_at": rollout.ended_at,
        "arms": {
            "canary_runs": overall.canary_runs,
            "control_runs": overall.control_runs,
            "metrics": [metric.as_dict() for metric in overall.metrics],
        },
        "analysis": None
        if step is None
        else {
            "verdict": step.verdict,
            "canary_runs": step.canary_runs,
            "control_runs": step.control_runs,
            "min_runs": step.min_runs,
            "metrics": [metric.as_dict() for metric in step.metrics],
        },
        "history": [
            {
                "step": row.step,
                "weight": row.weight,
                "verdict": row.verdict,
                "action": row.action,
                "by": row.by,
                "canary_runs": row.canary_runs,
                "control_runs": row.control_runs,
                "metrics": row.metrics,
                "created_at": row.created_at,
            }
            for row in canary.store.analyses(rollout.id)
        ],
    }


def metric_figure(name: str, value: float) -> str:
    """A metric value as people read it: dollars, milliseconds or a percentage."""
    if name == "cost_per_run":
        return f"${value:.6f}"
    if name == "latency_p95":
        return f"{value * 1000:.0f} ms"
    return f"{value:.1%}"


def metric_line(metric: dict[str, Any]) -> str:
    """``error_rate  control 2.0%  canary 25.0%  p=0.003  failed (critical)``"""
    p_value = "p=–" if metric["p_value"] is None else f"p={metric['p_value']:.3g}"
    critical = " (critical)" if metric["critical"] else ""
    return (
        f"{metric['name']:<13} control {metric_figure(metric['name'], metric['control']):>10}  "
        f"canary {metric_figure(metric['name'], metric['canary']):>10}  {p_value:<9} {metric['verdict']}{critical}"
    )


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text for the terminal."""
    lines = [f"stable release: {report['stable']}"]
    rollout = report["rollout"]
    if rollout is None:
        return [*lines, "no rollout yet: start one with `firebreak canary start RELEASE`"]
    ramp = " → ".join(f"[{w:g}%]" if i == rollout["step"] else f"{w:g}%" for i, w in enumerate(rollout["steps"]))
    lines += [
        f"rollout {rollout['id']}: {rollout['release']} vs {rollout['control']} — {rollout['status']} at "
        f"{rollout['weight']:g}% ({ramp})",
    ]
    if rollout["reason"]:
        lines.append(f"  reason: {rollout['reason']}")
    step = rollout["analysis"]
    if step is not None:
        lines.append(
            f"  this step: {step['verdict']} — canary {step['canary_runs']} runs, control {step['control_runs']} "
            f"(each needs {step['min_runs']})"
        )
        lines += [f"    {metric_line(metric)}" for metric in step["metrics"]]
    for row in rollout["history"]:
        lines.append(
            f"  step {row['weight']:g}%: {row['verdict']} → {row['action']} by {row['by']} "
            f"(canary {row['canary_runs']} runs, control {row['control_runs']})"
        )
        lines += [f"    {metric_line(metric)}" for metric in row["metrics"]]
    return lines
