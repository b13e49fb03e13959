"""Releases, rollouts and their analyses: the canary's durable state, shared by every worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.errors import CanaryError
from core.status import IN_PROGRESS
from memory.tables import CanaryAnalysis, Escalation, GateDecision, Release, Rollout, Run, table_of

RELEASES, ROLLOUTS, ANALYSES = table_of(Release), table_of(Rollout), table_of(CanaryAnalysis)
RUNS, ESCALATIONS, GATES = table_of(Run), table_of(Escalation), table_of(GateDecision)
ACTIVE = "active"


@dataclass(frozen=True)
class FinishedRun:
    """One finished run of a rollout, as its analysis reads it."""

    arm: str
    status: str
    flagged: bool  # it raised an escalation, or a gate held one of its calls
    cost_usd: float
    latency_s: float


def _finished(rollout_id: int, step: int | None) -> list[Any]:
    """The conditions for a rollout's finished runs, of one step's window when ``step`` is given."""
    conditions = [RUNS.c.rollout_id == rollout_id, RUNS.c.status.not_in(IN_PROGRESS)]
    return conditions if step is None else [*conditions, RUNS.c.rollout_step == step]


class CanaryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def release(self, name: str) -> dict[str, Any] | None:
        """The stored content of release ``name`` (as its ``spec`` column holds it), None if it never served."""
        with self.engine.connect() as connection:
            spec: dict[str, Any] | None = connection.execute(
                select(RELEASES.c.spec).where(RELEASES.c.name == name)
            ).scalar()
        return spec

    def add_release(self, name: str, digest: str, spec: dict[str, Any], *, now: float) -> bool:
        """Store release ``name``; False when it is stored already (another worker may have been first)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(RELEASES).values(name=name, digest=digest, spec=spec, created_at=now))
        except IntegrityError:
            return False
        return True

    def replace_release(self, name: str, digest: str, spec: dict[str, Any], *, now: float) -> None:
        """Overwrite the stored content of release ``name``."""
        values = {"name": name, "digest": digest, "spec": spec, "created_at": now}
        with self.engine.begin() as connection:
            connection.execute(update(RELEASES).where(RELEASES.c.name == name).values(values))

    def promoted(self) -> str | None:
        """The release promoted last, None if none ever was."""
        query = (
            select(ROLLOUTS.c.release)
            .where(ROLLOUTS.c.status == "promoted")
            .order_by(ROLLOUTS.c.ended_at.desc(), ROLLOUTS.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            promoted: str | None = connection.execute(query).scalar()
        return promoted

    def create(self, rollout: Rollout) -> Rollout:
        """Insert an active rollout, or raise :class:`CanaryError` when one is active already."""
        values = rollout.model_dump(exclude={"id"})
        try:
            with self.engine.begin() as connection:
                rollout_id = connection.execute(insert(ROLLOUTS).values(values).returning(ROLLOUTS.c.id)).scalar_one()
        except IntegrityError:
            active = self.active()
            name = active.release if active else "?"
            raise CanaryError(f"rollout of {name!r} is still active: promote or roll it back first") from None
        created = self.get(rollout_id)
        assert created is not None
        return created

    def get(self, rollout_id: int) -> Rollout | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.id == rollout_id)).first()
        return None if row is None else Rollout(**row._mapping)

    def active(self) -> Rollout | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.active == ACTIVE)).first()
        return None if row is None else Rollout(**row._mapping)

    def latest(self, limit: int = 20) -> list[Rollout]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(ROLLOUTS).order_by(ROLLOUTS.c.id.desc()).limit(limit)).all()
        return [Rollout(**row._mapping) for row in rows]

    def change(self, rollout: Rollout, analysis: CanaryAnalysis | None = None, **values: Any) -> Rollout | None:
        """Apply ``values`` if nobody changed the rollout since ``rollout`` was read (and record ``analysis``
        with it); None when another worker got there first."""
        if values.get("status") in ("promoted", "rolled_back"):
            values["active"] = None
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(ROLLOUTS)
                .where(ROLLOUTS.c.id == rollout.id, ROLLOUTS.c.version == rollout.version)
                .values(version=rollout.version + 1, **values)
            ).rowcount
            if not changed:
                return None
            if analysis is not None:
                connection.execute(insert(ANALYSES).values(analysis.model_dump(exclude={"id"})))
        assert rollout.id is not None
        return self.get(rollout.id)

    def analyses(self, rollout_id: int) -> list[CanaryAnalysis]:
        query = select(ANALYSES).where(ANALYSES.c.rollout_id == rollout_id).order_by(ANALYSES.c.id)
        with self.engine.connect() as connection:
            return [CanaryAnalysis(**row._mapping) for row in connection.execute(query).all()]

    def arm_counts(self, rollout_id: int, step: int) -> dict[str, int]:
        """Finished runs per arm in one step's window."""
        query = select(RUNS.c.arm, func.count()).where(*_finished(rollout_id, step)).group_by(RUNS.c.arm)
        with self.engine.connect() as connection:
            return {arm: count for arm, count in connection.execute(query).all()}

    def finished_runs(self, rollout_id: int, step: int | None = None) -> list[FinishedRun]:
        """The finished runs of one step's window (or of the whole rollout), both arms."""
        flagged = or_(
            exists().where(ESCALATIONS.c.run_id == RUNS.c.id),
            exists().where(GATES.c.run_id == RUNS.c.id, GATES.c.band != "execute"),
        )
        query = select(
            RUNS.c.arm, RUNS.c.status, RUNS.c.cost_usd, RUNS.c.created_at, RUNS.c.finished_at, flagged
        ).where(*_finished(rollout_id, step))
        with self.engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(query).all()
        return [
            FinishedRun(
                arm=row.arm,
                status=row.status,
                flagged=bool(row[5]),
                cost_usd=row.cost_usd,
                latency_s=(row.finished_at - row.created_at).total_seconds() if row.finished_at else 0.0,
            )
            for row in rows
        ]
