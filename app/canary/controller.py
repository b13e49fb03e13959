"""The rollout controller: which release serves a request, and when a rollout steps up, holds or rolls back.

Steps follow Argo Rollouts: set the canary's weight, wait for the step's window to fill, analyse it. A
successful analysis advances (reaching 100% promotes), a failed critical metric rolls back at once, a failed
non-critical metric holds the rollout for an operator, an inconclusive one (too few runs) waits and never
promotes. Every decision is a ``canary_analyses`` row and a span; a rollback is also an alert.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Tracer

from app.canary.analysis import Analysis, RunSample, analyze
from app.canary.release import BASE_RELEASE, ReleaseSpec, release_spec
from core.config import Settings
from core.errors import CanaryError
from core.status import is_error
from core.user_modules import import_attribute
from memory.canary import ACTIVE, CanaryStore
from memory.tables import CanaryAnalysis, Rollout

AlertHook = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Assignment:
    """The release that serves one request, and its arm when a rollout is running."""

    release: ReleaseSpec
    arm: str | None = None
    rollout_id: int | None = None
    step: int | None = None


def bucket(rollout_id: int, subject: str) -> float:
    """Where ``subject`` falls in [0, 100) for this rollout: fixed for its whole life, so raising the weight
    only moves users newly below it to the canary, and nobody ever moves back while it runs."""
    digest = hashlib.sha256(f"{rollout_id}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class Canary:
    def __init__(
        self,
        store: CanaryStore,
        settings: Settings,
        *,
        tracer: Tracer,
        alert: AlertHook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self._tracer = tracer
        self._alert = alert
        self._clock = clock

    def stable(self) -> ReleaseSpec:
        """The release serving everyone outside a rollout: the last one promoted, else ``base``."""
        name = self.store.promoted() or BASE_RELEASE
        if name == BASE_RELEASE:
            return self._register(release_spec(self.settings, BASE_RELEASE), now=self._clock())
        spec = self._stored(name)
        assert spec is not None, f"promoted release {name!r} has no stored spec"
        return spec

    def release(self, name: str) -> ReleaseSpec:
        """A release that served before (a resumed run's), as it was then."""
        return self._stored(name) or self._register(release_spec(self.settings, name), now=self._clock())

    def _stored(self, name: str) -> ReleaseSpec | None:
        spec = self.store.release(name)
        return None if spec is None else ReleaseSpec.from_dict(spec)

    def _register(self, spec: ReleaseSpec, *, now: float) -> ReleaseSpec:
        """Store ``spec`` the first time its name serves; a name never changes its content afterwards.

        ``base`` is the exception: it *is* the [agent] settings of the day, so it follows them.
        """
        stored = self._stored(spec.name)
        if stored == spec:
            return spec
        if stored is None and not self.store.add_release(spec.name, spec.digest, spec.as_dict(), now=now):
            stored = self._stored(spec.name)  # another worker registered it first
        if stored is not None and stored != spec:
            if spec.name != BASE_RELEASE:
                raise CanaryError(
                    f"release {spec.name!r} changed since it first served (digest {stored.digest} -> "
                    f"{spec.digest}): give the new version a new name"
                )
            self.store.replace_release(spec.name, spec.digest, spec.as_dict(), now=now)
        return spec

    def serve(self, tenant_id: str, user_id: str, thread_id: str) -> Assignment:
        """The release for a new run: by its sticky bucket while a rollout is active, else the stable one."""
        rollout = self.store.active()
        if rollout is None or rollout.id is None:
            return Assignment(self.stable())
        user = f"{tenant_id}/{user_id}"
        subject = user if self.settings.canary.sticky == "user" else thread_id
        early = user in self.settings.canary.early_users
        arm = "canary" if early or bucket(rollout.id, subject) < rollout.steps[rollout.step] else "control"
        spec = self._stored(rollout.release if arm == "canary" else rollout.control)
        assert spec is not None, "a rollout's releases are stored when it starts"
        return Assignment(spec, arm, rollout.id, rollout.step)

    def start(self, name: str, *, by: str) -> Rollout:
        """Begin rolling out release ``name`` against the stable release, at the first step's weight."""
        control = self.stable()
        if name == control.name:
            raise CanaryError(f"release {name!r} already serves everyone")
        now = self._clock()
        spec = release_spec(self.settings, name)
        if spec.graph:  # a graph that does not import fails the start, not the canary's first users
            import_attribute(spec.graph, setting=spec.graph_setting)
        self._register(spec, now=now)
        rollout = self.store.create(
            Rollout(
                release=name,
                control=control.name,
                active=ACTIVE,
                status="running",
                steps=list(self.settings.canary.steps),
                step=0,
                started_by=by,
                started_at=now,
                step_started_at=now,
            )
        )
        self._span("start", rollout, None, by)
        return rollout

    def analysis(self, rollout: Rollout) -> Analysis:
        """The current step's analysis, as far as its window has filled."""
        assert rollout.id is not None
        return analyze(self.samples(rollout.id, rollout.step), self.settings.canary, rollout.step)

    def samples(self, rollout_id: int, step: int | None = None) -> list[RunSample]:
        """The finished runs of one step's window (or of the whole rollout), both arms, as the analysis reads them."""
        return [
            RunSample(
                arm=run.arm,
                error=is_error(run.status),
                flagged=run.flagged,
                cost_usd=run.cost_usd,
                latency_s=run.latency_s,
            )
            for run in self.store.finished_runs(rollout_id, step)
        ]

    def evaluate(self) -> Rollout | None:
        """Act on the running rollout's analysis, if it concludes; returns the changed rollout."""
        rollout = self.store.active()
        if rollout is None or rollout.id is None or rollout.status != "running":
            return None
        # Counting first spares the statistics on every run while the window fills.
        counts = self.store.arm_counts(rollout.id, rollout.step)
        if min(counts.get("control", 0), counts.get("canary", 0)) < self.settings.canary.min_runs_at(rollout.step):
            return None
        analysis = self.analysis(rollout)
        if analysis.critical_failure:
            return self._rollback(rollout, analysis, by="analysis", reason=_failure_reason(analysis))
        if analysis.verdict == "failed":
            return self._hold(rollout, analysis, _failure_reason(analysis) + "; an operator must promote or roll back")
        if self._clock() - rollout.step_started_at < self.settings.canary.min_step_s:
            return None
        if not self.settings.canary.auto_promote:
            return self._hold(rollout, analysis, f"step {_weight(rollout)}% passed; waiting for promote")
        return self._advance(rollout, analysis, by="analysis", full=False)

    def promote(self, *, by: str, full: bool = False) -> Rollout:
        """An operator's promotion: the next step (or 100% with ``full``), whatever the analysis says."""
        rollout = self._active()
        changed = self._advance(rollout, self.analysis(rollout), by=by, full=full)
        if changed is None:
            raise CanaryError("the rollout changed meanwhile; look at `firebreak canary status` and try again")
        return changed

    def rollback(self, *, by: str, reason: str = "rolled back by hand") -> Rollout:
        """Send all traffic back to the control at once."""
        rollout = self._active()
        changed = self._rollback(rollout, self.analysis(rollout), by=by, reason=reason)
        if changed is None:
            raise CanaryError("the rollout changed meanwhile; look at `firebreak canary status` and try again")
        return changed

    def _active(self) -> Rollout:
        rollout = self.store.active()
        if rollout is None:
            raise CanaryError("no rollout is active: start one with `firebreak canary start RELEASE`")
        return rollout

    def _advance(self, rollout: Rollout, analysis: Analysis, *, by: str, full: bool) -> Rollout | None:
        step = len(rollout.steps) - 1 if full else rollout.step + 1
        now = self._clock()
        if rollout.steps[step] >= 100:
            record = self._record(rollout, analysis, "promoted", by)
            changed = self.store.change(rollout, record, status="promoted", step=step, ended_at=now, reason=None)
        else:
            record = self._record(rollout, analysis, "advanced", by)
            changed = self.store.change(rollout, record, status="running", step=step, step_started_at=now, reason=None)
        if changed is not None:
            self._span(record.action, changed, analysis, by)
        return changed

    def _hold(self, rollout: Rollout, analysis: Analysis, reason: str) -> Rollout | None:
        record = self._record(rollout, analysis, "held", "analysis")
        changed = self.store.change(rollout, record, status="paused", reason=reason)
        if changed is not None:
            self._span("held", changed, analysis, "analysis")
        return changed

    def _rollback(self, rollout: Rollout, analysis: Analysis, *, by: str, reason: str) -> Rollout | None:
        record = self._record(rollout, analysis, "rolled_back", by)
        changed = self.store.change(rollout, record, status="rolled_back", ended_at=self._clock(), reason=reason)
        if changed is None:
            return None
        self._span("rolled_back", changed, analysis, by)
        self._alert(
            "canary_rollback",
            f"release {rollout.release} rolled back to {rollout.control} at {_weight(rollout)}% ({by}): {reason}",
            {
                "rollout_id": rollout.id,
                "release": rollout.release,
                "control": rollout.control,
                "weight": rollout.steps[rollout.step],
                "by": by,
                "canary_runs": analysis.canary_runs,
                "control_runs": analysis.control_runs,
                "metrics": [metric.as_dict() for metric in analysis.metrics],
            },
        )
        return changed

    def _record(self, rollout: Rollout, analysis: Analysis, action: str, by: str) -> CanaryAnalysis:
        assert rollout.id is not None
        return CanaryAnalysis(
            rollout_id=rollout.id,
            step=rollout.step,
            weight=rollout.steps[rollout.step],
            verdict=analysis.verdict,
            action=action,
            canary_runs=analysis.canary_runs,
            control_runs=analysis.control_runs,
            metrics=[metric.as_dict() for metric in analysis.metrics],
            by=by,
            created_at=self._clock(),
        )

    def _span(self, action: str, rollout: Rollout, analysis: Analysis | None, by: str) -> None:
        with self._tracer.start_as_current_span(f"canary {action}") as span:
            span.set_attributes(
                {
                    "firebreak.canary.rollout_id": rollout.id or 0,
                    "firebreak.canary.release": rollout.release,
                    "firebreak.canary.control": rollout.control,
                    "firebreak.canary.weight": rollout.steps[rollout.step],
                    "firebreak.canary.status": rollout.status,
                    "firebreak.canary.by": by,
                }
            )
            if analysis is not None:
                span.set_attribute("firebreak.canary.verdict", analysis.verdict)
                for metric in analysis.metrics:
                    span.set_attribute(f"firebreak.canary.{metric.name}.control", metric.control)
                    span.set_attribute(f"firebreak.canary.{metric.name}.canary", metric.canary)


def _weight(rollout: Rollout) -> str:
    return f"{rollout.steps[rollout.step]:g}"


def _failure_reason(analysis: Analysis) -> str:
    parts = [
        f"{metric.name} {metric.canary:.4g} vs control {metric.control:.4g} (p={metric.p_value:.3g})"
        for metric in analysis.failures()
    ]
    return "worse than control: " + "; ".join(parts)
