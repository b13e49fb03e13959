"""An operator answers an escalation through the agent that raised it, audited like every operator action."""

from __future__ import annotations

from app.operators import Operator, acting, answer_action
from graph.agent import Agent, RunResult
from memory.audit import AuditLog
from memory.tables import Escalation


async def answer_as(
    agent: Agent, operator: Operator, escalation: Escalation, answer: str, *, note: str | None
) -> RunResult | None:
    """Answer ``escalation`` as ``operator``, audited (approving a budget breach is raising a limit)."""
    action = answer_action(escalation, answer)
    log = AuditLog(agent.services.engine)
    with acting(log, operator, action, target=escalation.id, tenant_id=escalation.tenant_id, detail=answer):
        return await agent.answer(escalation.id, answer, by=operator.name, note=note)
