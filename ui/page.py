"""What every tab's handlers share: the settings, the UI's one agent, the pinned route, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from app.operators import Operator, configured, local
from app.services import Services
from core.config import Settings
from core.errors import FirebreakError
from graph.agent import Agent

if TYPE_CHECKING:
    from ui.app import AgentSlot


def operator_of(settings: Settings, request: gr.Request | None) -> Operator:
    """Who uses this page: the operator who logged in, else (a UI bound to loopback) the local person."""
    name = getattr(request, "username", None)
    if name:
        return configured(settings.operators, name, via="ui")
    return local(settings.operators, via="ui")


def readable(operator: Operator, *, fleet: bool = False) -> Operator:
    """``operator`` if they may read this view (``fleet``: one of breakers, budgets, ops, canary), else an
    error on the page saying why."""
    refusal = operator.read_refusal(fleet=fleet)
    if refusal is not None:
        raise gr.Error(refusal)
    return operator


@dataclass(frozen=True)
class Page:
    """The page's settings, its agent and the route ``firebreak ui --model`` pins (None: by release)."""

    settings: Settings
    slot: AgentSlot
    route: str | None = None

    async def agent(self) -> Agent:
        """The agent; an unreachable store becomes a readable message in the page, not a bare "Error"."""
        try:
            return await self.slot.get()
        except FirebreakError as exc:
            raise gr.Error(str(exc)) from exc

    async def services(self) -> Services:
        return (await self.agent()).services

    def operator(self, request: gr.Request | None) -> Operator:
        """Who sends ``request`` (see ``operator_of``)."""
        return operator_of(self.settings, request)

    def reader(self, request: gr.Request | None, *, fleet: bool = False) -> Operator:
        """Who sends ``request``, if they may read this view (see ``readable``)."""
        return readable(self.operator(request), fleet=fleet)

    def chat_tenant(self, operator: Operator) -> str:
        """The tenant the page's chat and team runs act for: an operator's (first) tenant, else the configured one."""
        return operator.tenants[0] if operator.tenants else self.settings.identity.default_tenant
