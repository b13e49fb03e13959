"""Compare a canary's runs with the control's runs of the same step window.

Rates (errors, flags) use Fisher's exact test: runs are pass/fail, and early steps have a handful of canary
runs, where a normal approximation misleads. Cost and latency use the Mann-Whitney U test (as Kayenta does):
their distributions are skewed and heavy-tailed, so a rank test beats a t-test. Every test is one-sided
(is the canary worse?), and a metric fails only when the difference is significant *and* larger than its
tolerance: with thousands of control runs, a negligible difference can be significant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from app.stats import percentile
from core.config import CanaryMetric, CanarySettings

Verdict = Literal["successful", "failed", "inconclusive"]
Arm = Literal["control", "canary"]


@dataclass(frozen=True)
class RunSample:
    """What the analysis needs of one finished run."""

    arm: str
    error: bool
    flagged: bool
    cost_usd: float
    latency_s: float


@dataclass(frozen=True)
class MetricResult:
    """One metric of both arms and its test."""

    name: str
    control: float
    canary: float
    p_value: float | None
    tolerance: float
    critical: bool
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Analysis:
    """A step's verdict: inconclusive without enough runs, else failed if any metric failed, else successful."""

    verdict: Verdict
    canary_runs: int
    control_runs: int
    min_runs: int
    metrics: tuple[MetricResult, ...]

    @property
    def critical_failure(self) -> bool:
        return any(metric.verdict == "failed" and metric.critical for metric in self.metrics)

    def failures(self) -> list[MetricResult]:
        return [metric for metric in self.metrics if metric.verdict == "failed"]


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95) or 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _rate_metric(
    name: str, control: Sequence[bool], canary: Sequence[bool], rule: CanaryMetric, alpha: float
) -> MetricResult:
    control_rate, canary_rate = _mean([float(x) for x in control]), _mean([float(x) for x in canary])
    p_value = None
    if control and canary:
        from scipy.stats import fisher_exact  # ~1.7 s to import: only when a step is analysed, not at every start

        table = [[sum(canary), len(canary) - sum(canary)], [sum(control), len(control) - sum(control)]]
        p_value = float(fisher_exact(table, alternative="greater").pvalue)
    worse = p_value is not None and p_value < alpha and canary_rate - control_rate > rule.tolerance
    return MetricResult(name, control_rate, canary_rate, p_value, rule.tolerance, rule.critical, _verdict(worse))


def _distribution_metric(
    name: str, control: Sequence[float], canary: Sequence[float], rule: CanaryMetric, alpha: float, summary: Any
) -> MetricResult:
    control_value, canary_value = summary(control), summary(canary)
    p_value = None
    if control and canary:
        from scipy.stats import mannwhitneyu  # see fisher_exact above

        # All-equal samples (a free model's cost) make the statistic undefined: nothing to tell apart.
        result = float(mannwhitneyu(canary, control, alternative="greater").pvalue)
        p_value = 1.0 if math.isnan(result) else result
    worse = p_value is not None and p_value < alpha and canary_value > control_value * (1 + rule.tolerance) + 1e-12
    return MetricResult(name, control_value, canary_value, p_value, rule.tolerance, rule.critical, _verdict(worse))


def _verdict(worse: bool) -> Verdict:
    return "failed" if worse else "successful"


def analyze(samples: Sequence[RunSample], settings: CanarySettings, step: int) -> Analysis:
    """The analysis of one step's window: every metric of both arms, then the step's verdict."""
    arms = {arm: [s for s in samples if s.arm == arm] for arm in ("control", "canary")}
    control, canary = arms["control"], arms["canary"]
    rules, alpha = settings.metrics, settings.alpha
    metrics = (
        _rate_metric("error_rate", [s.error for s in control], [s.error for s in canary], rules.error_rate, alpha),
        _rate_metric("flag_rate", [s.flagged for s in control], [s.flagged for s in canary], rules.flag_rate, alpha),
        _distribution_metric(
            "cost_per_run",
            [s.cost_usd for s in control],
            [s.cost_usd for s in canary],
            rules.cost_per_run,
            alpha,
            _mean,
        ),
        _distribution_metric(
            "latency_p95",
            [s.latency_s for s in control if not s.error],
            [s.latency_s for s in canary if not s.error],
            rules.latency_p95,
            alpha,
            p95,
        ),
    )
    min_runs = settings.min_runs_at(step)
    verdict: Verdict
    # Concluding only at the planned sample size keeps each test's error rate at alpha: re-testing after
    # every run ("peeking") and stopping at the first significant result would inflate it several times.
    if min(len(control), len(canary)) < min_runs:
        verdict = "inconclusive"
    elif any(metric.verdict == "failed" for metric in metrics):
        verdict = "failed"
    else:
        verdict = "successful"
    return Analysis(verdict, len(canary), len(control), min_runs, metrics)
