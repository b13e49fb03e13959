"""Releases, rollouts and their analyses: the canary's durable state, shared by every worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from app.canary.analysis import RunSample
from app.canary.release import BASE_RELEASE, ReleaseSpec
from core.errors import CanaryError
from memory.runs import IN_PROGRESS_STATUSES, is_error
from memory.tables import CanaryAnalysis, Escalation, GateDecision, Release, Rollout, Run, table_of

RELEASES, ROLLOUTS, ANALYSES = table_of(Release), table_of(Rollout), table_of(CanaryAnalysis)
RUNS, ESCALATIONS, GATES = table_of(Run), table_of(Escalation), table_of(GateDecision)
ACTIVE = "active"


def _finished(rollout_id: int, step: int | None) -> list[Any]:
    """The conditions for a rollout's finished runs, of one step's window when ``step`` is given."""
    conditions = [RUNS.c.rollout_id == rollout_id, RUNS.c.status.not_in(IN_PROGRESS_STATUSES)]
    return conditions if step is None else [*conditions, RUNS.c.rollout_step == step]


class CanaryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, spec: ReleaseSpec, *, now: float) -> ReleaseSpec:
        """Store ``spec`` the first time its name serves; a name never changes its content afterwards.

        ``base`` is the exception: it *is* the [agent] settings of the day, so it follows them.
        """
        stored = self.release(spec.name)
        if stored == spec:
            return spec
        row = {"name": spec.name, "digest": spec.digest, "spec": spec.as_dict(), "created_at": now}
        if stored is None:
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(RELEASES).values(row))
            except IntegrityError:
                stored = self.release(spec.name)  # another worker registered it first
        if stored is not None and stored != spec:
            if spec.name != BASE_RELEASE:
                raise CanaryError(
                    f"release {spec.name!r} changed since it first served (digest {stored.digest} -> "
                    f"{spec.digest}): give the new version a new name"
                )
            with self.engine.begin() as connection:
                connection.execute(update(RELEASES).where(RELEASES.c.name == spec.name).values(row))
        return spec

    def release(self, name: str) -> ReleaseSpec | None:
        with self.engine.connect() as connection:
            spec = connection.execute(select(RELEASES.c.spec).where(RELEASES.c.name == name)).scalar()
        return None if spec is None else ReleaseSpec.from_dict(spec)

    def stable(self) -> str:
        """The release that serves everyone outside a rollout: the last one promoted, else ``base``."""
        query = (
            select(ROLLOUTS.c.release)
            .where(ROLLOUTS.c.status == "promoted")
            .order_by(ROLLOUTS.c.ended_at.desc(), ROLLOUTS.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar() or BASE_RELEASE

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

    def samples(self, rollout_id: int, step: int | None = None) -> list[RunSample]:
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
            RunSample(
                arm=row.arm,
                error=is_error(row.status),
                flagged=bool(row[5]),
                cost_usd=row.cost_usd,
                latency_s=(row.finished_at - row.created_at).total_seconds() if row.finished_at else 0.0,
            )
            for row in rows
        ]
