"""Calibration of the confidence gate from what it recorded: was each band right?

An action counts as *right* when a person approved it or it executed without
error, and *wrong* when a person rejected it, it expired unapproved, or it
failed. Per band the report gives decisions, how many have an outcome yet, and
the share that was right; per tenth of the score range it gives the mean score
against the observed rate (a calibrated gate has the two close) and the
expected calibration error over all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.config import GateThresholds
from memory.tables import GateDecision

RIGHT = frozenset({"approved", "executed"})
WRONG = frozenset({"rejected", "expired", "failed"})


def _rate(rows: Sequence[GateDecision]) -> tuple[int, int, float | None]:
    known = [row for row in rows if row.outcome in RIGHT | WRONG]
    right = sum(row.outcome in RIGHT for row in known)
    return len(known), right, (right / len(known) if known else None)


def _advice(bands: list[dict[str, Any]], thresholds: GateThresholds) -> str:
    by_name = {band["band"]: band for band in bands}
    execute, confirm = by_name["execute"], by_name["confirm"]
    if execute["accuracy"] is not None and execute["accuracy"] < 0.95 and execute["with_outcome"] >= 20:
        return f"auto-executed actions were right only {execute['accuracy']:.0%} of the time: raise execute_above"
    if confirm["accuracy"] is not None and confirm["accuracy"] > 0.98 and confirm["with_outcome"] >= 50:
        return f"users confirmed {confirm['accuracy']:.0%} of confirm-band actions: execute_above could come down"
    if sum(band["with_outcome"] for band in bands) < 20:
        return "too few outcomes to tune thresholds yet (start conservative, loosen as data arrives)"
    return f"thresholds {thresholds.confirm_above:g} / {thresholds.execute_above:g} look consistent with outcomes"


def calibration(rows: Sequence[GateDecision], thresholds: GateThresholds) -> dict[str, Any]:
    """The report ``firebreak eval gate --json`` prints."""
    ranges = {
        "execute": f"> {thresholds.execute_above:g}",
        "confirm": f"{thresholds.confirm_above:g}–{thresholds.execute_above:g}",
        "human": f"< {thresholds.confirm_above:g}",
    }
    bands = []
    for name, label in ranges.items():
        members = [row for row in rows if row.band == name]
        known, right, accuracy = _rate(members)
        bands.append(
            {
                "band": name,
                "range": label,
                "decisions": len(members),
                "with_outcome": known,
                "right": right,
                "accuracy": accuracy,
            }
        )
    bins, weighted_gap, total = [], 0.0, 0
    for tenth in range(10):
        low, high = tenth / 10, (tenth + 1) / 10
        members = [row for row in rows if low <= row.score < high or (tenth == 9 and row.score == 1.0)]
        known, right, accuracy = _rate(members)
        scored = [row.score for row in members if row.outcome in RIGHT | WRONG]
        mean = sum(scored) / len(scored) if scored else None
        if accuracy is not None and mean is not None:
            weighted_gap += known * abs(accuracy - mean)
            total += known
        bins.append({"range": [low, high], "with_outcome": known, "mean_score": mean, "observed": accuracy})
    return {
        "decisions": len(rows),
        "thresholds": {"execute_above": thresholds.execute_above, "confirm_above": thresholds.confirm_above},
        "bands": bands,
        "bins": bins,
        "expected_calibration_error": weighted_gap / total if total else None,
        "advice": _advice(bands, thresholds),
    }
