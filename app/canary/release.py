"""A release: one agent version (system prompt, model route and its models, planner, graph) and its digest."""

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
    graph: str = ""  # "module:attribute" of its graph; "" is the built-in one

    @property
    def digest(self) -> str:
        # Without a graph the content is what it was before releases had one: their stored digests still hold.
        content = {key: value for key, value in asdict(self).items() if key != "name" and (key != "graph" or value)}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def graph_setting(self) -> str:
        """Where its graph is named, for an error about it: ``[agent] graph`` for base, else the release."""
        return "agent.graph" if self.name == BASE_RELEASE else f"release {self.name}'s graph"

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
            graph=data.get("graph", ""),  # stored before releases had a graph
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
        graph=table.graph if table and table.graph is not None else settings.agent.graph,
    )
