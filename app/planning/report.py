"""Planned vs executed: a run's plan versions next to the tool calls it made, for the CLI and the UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memory.tables import PlanVersion, RunEvent

MARKS = {"done": "✓", "failed": "✗", "dropped": "–", "pending": "·"}


def plan_report(versions: Sequence[PlanVersion], events: Sequence[RunEvent]) -> dict[str, Any]:
    """Every plan version (why it changed, its steps as they ended) and every tool call executed, in order."""
    return {
        "versions": [
            {
                "version": row.version,
                "change": row.change,
                "trigger": row.trigger,
                "severity": row.severity,
                "reason": row.reason,
                "made_by": row.made_by,
                "steps": row.steps,
            }
            for row in versions
        ],
        "executed": [
            {"tool": e.payload.get("tool"), "status": e.payload.get("status")}
            for e in events
            if e.kind == "tool_result"
        ],
        "escalated": [e.payload.get("reason") for e in events if e.node == "replan" and e.kind == "escalated"],
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: each version with its steps, then what was executed."""
    if not report["versions"]:
        return ["this run has no plan (it was not planned, or the planner failed: see its trace)"]
    lines = []
    for version in report["versions"]:
        why = f" after {version['trigger']} ({version['severity']}): {version['reason']}" if version["trigger"] else ""
        lines.append(f"plan v{version['version']} · {version['change']} by {version['made_by']}{why}")
        for step in version["steps"]:
            call = f"{step['tool']}({', '.join(f'{k}={v!r}' for k, v in step['inputs'].items())})"
            what = call if step["tool"] else "answer"
            note = f" — {step['note']}" if step.get("note") else ""
            lines.append(f"  {MARKS.get(step['status'], '?')} {step['id']} {what}{note}")
    executed = ", ".join(
        f"{call['tool']} {MARKS['done' if call['status'] == 'success' else 'failed']}" for call in report["executed"]
    )
    lines.append(f"executed: {executed or 'no tool calls'}")
    lines.extend(f"escalated: {reason}" for reason in report["escalated"])
    return lines
