"""A release: one agent version (system prompt, model route and its models, graph config) and its digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from core.config import Settings
from core.errors import ConfigError

# The version described by [agent] and [planner] themselves: what serves when no release was ever promoted.
BASE_RELEASE = "base"


@dataclass(frozen=True)
class ReleaseSpec:
    """Everything that makes an agent version behave as it does; its digest changes when any part does."""

    name: str
    system_prompt: str
    route: str
    models: tuple[str, ...]
    planner: bool

    @property
    def digest(self) -> str:
        content = {key: value for key, value in asdict(self).items() if key != "name"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "models": list(self.models)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseSpec:
        return cls(
            name=data["name"],
            system_prompt=data["system_prompt"],
            route=data["route"],
            models=tuple(data["models"]),
            planner=bool(data["planner"]),
        )


def release_spec(settings: Settings, name: str) -> ReleaseSpec:
    """The release ``name`` as configured now: its ``[releases.NAME]`` table over the [agent] defaults."""
    if name != BASE_RELEASE and name not in settings.releases:
        known = sorted({BASE_RELEASE, *settings.releases})
        raise ConfigError(f"unknown release {name!r}: configure [releases.{name}] or use one of {known}")
    table = settings.releases.get(name)
    route = (table and table.route) or settings.agent.default_route
    planner = table.planner if table and table.planner is not None else settings.planner.enabled
    return ReleaseSpec(
        name=name,
        system_prompt=(table and table.system_prompt) or settings.agent.system_prompt,
        route=route,
        models=tuple(settings.route(route).models),
        planner=planner,
    )
