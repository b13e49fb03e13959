"""Firebreak's agent behind LangGraph Server: ``langgraph dev`` serves ``graph`` (see ``langgraph.json``) to
LangGraph Studio and Agent Chat UI.

The served graph is a thin outer graph over :class:`Agent`, so a server run is a Firebreak run with every guard
and every record an ``Agent.ask`` has (run row, thread lease, tenant check, canary, escalation rows)::

    START → ask ─answered→ END
              └─waiting→ review ─(interrupt; resumed with the operator's decision)→ END, or review again

The server's checkpointer keeps the outer state (the chat as Agent Chat UI shows it, the Firebreak run it
waits on); Firebreak's durable checkpointer keeps the guarded run, keyed by the same thread id. A paused run
waits in an ``interrupt()`` whose value uses LangChain's human-in-the-loop shape (``action_requests`` and
``review_configs``), and the resume value is the operator's decision. Why two checkpointers and not one:
docs/decisions/0048-langgraph-server.md.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt

from app.operators import Operator, configured, local
from core.config import OperatorsSettings, load_settings
from core.errors import FirebreakError
from core.status import RunStatus
from graph.agent import Agent
from graph.answers import answer_as
from graph.results import RunResult, run_result
from memory.tables import Escalation

DECISIONS = ["approve", "reject"]
VIA = "langgraph"  # how an operator reached Firebreak, in the audit log (beside cli and ui)


class ServerState(TypedDict, total=False):
    """What the server checkpoints: Agent Chat UI's ``messages``, and the Firebreak run a paused thread waits on."""

    messages: Annotated[list[AnyMessage], add_messages]
    run_id: str | None
    status: str


class _Shared:
    """One Agent per server process, opened by the first run on the server's event loop (its stores and the
    embedding cache load once, not per run)."""

    agent: Agent | None = None
    lock: asyncio.Lock | None = None


async def shared_agent() -> Agent:
    """The process's Agent, on the settings of ``firebreak.toml``, ``FIREBREAK_CONFIG`` and ``FIREBREAK_*``."""
    if _Shared.lock is None:
        _Shared.lock = asyncio.Lock()
    async with _Shared.lock:
        if _Shared.agent is None:
            _Shared.agent = await Agent.create(load_settings())
    return _Shared.agent


def _configurable(config: RunnableConfig) -> dict[str, Any]:
    return dict(config.get("configurable") or {})


def question_of(messages: list[AnyMessage]) -> str:
    """The text of the last person's message: what Agent Chat UI sent."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    raise FirebreakError("the thread has no message from a person to answer")


def settled(result: RunResult) -> dict[str, Any]:
    """The outer state's update for a Firebreak run's outcome: a waiting run adds no message yet."""
    update: dict[str, Any] = {"run_id": result.run_id, "status": result.status}
    if result.status != RunStatus.WAITING:
        text = result.answer or result.error or f"The run ended {result.status}."
        update["messages"] = [AIMessage(content=text, id=f"firebreak-{result.run_id}")]
    return update


async def ask(state: ServerState, config: RunnableConfig) -> dict[str, Any]:
    """Run the thread's newest question through Firebreak, as the identity the run's config names."""
    agent = await shared_agent()
    configurable = _configurable(config)
    try:
        result = await agent.ask(
            question_of(state.get("messages") or []),
            thread_id=configurable["thread_id"],
            # A local install answers as [identity]'s defaults; a deployment passes who asks in the config, and
            # a user the server's auth signed in is the run's user whatever the config says.
            tenant_id=configurable.get("tenant_id") or None,
            user_id=configurable.get("langgraph_auth_user_id") or configurable.get("user_id") or None,
        )
    except FirebreakError as exc:
        # Refused before it ran (a busy or foreign thread, an empty question): the person reads why. A thread
        # whose run waits for a reviewer goes back to waiting for them: the new message did not answer it.
        latest = agent.services.runs.recent(limit=1, thread_id=configurable["thread_id"])
        waiting = latest[0].id if latest and latest[0].status == RunStatus.WAITING else None
        return {
            "messages": [AIMessage(content=str(exc))],
            "run_id": waiting,
            "status": RunStatus.WAITING.value if waiting else "refused",
        }
    return settled(result)


def review_request(run_id: str, pauses: list[Escalation]) -> dict[str, Any]:
    """The interrupt's value: LangChain's human-in-the-loop request (which Agent Chat UI renders), one action
    per escalation, with Firebreak's ids so any client can answer through the escalation rows too."""
    return {
        "run_id": run_id,
        "escalation_ids": [row.id for row in pauses],
        "action_requests": [
            {
                "name": _action(row),
                "args": row.context.get("arguments") or {},
                "description": f"{row.question}\n\n{row.reason}",
            }
            for row in pauses
        ],
        "review_configs": [{"action_name": _action(row), "allowed_decisions": DECISIONS} for row in pauses],
    }


def _action(row: Escalation) -> str:
    """A gated call is named by its tool; any other escalation by what triggered it (a budget breach, …)."""
    return str(row.context.get("target") or row.trigger)


Answer = tuple[str, str | None]  # the answer, and the reviewer's note


def answers(decision: Any, pauses: list[Escalation]) -> list[Answer]:
    """The operator's answer to each escalation, from the resume value: one word or text for all of them,
    ``{"decisions": [{"type": "approve" | "reject", "message": …}, …]}`` in order, or ``{escalation id: answer}``."""
    if isinstance(decision, str):
        return [(decision, None)] * len(pauses)
    if not isinstance(decision, dict):
        raise FirebreakError(f"cannot read {decision!r} as a decision: send 'approve', 'reject' or decisions")
    if "decisions" not in decision:
        return [(str(decision[row.id]), None) for row in pauses]
    decided = list(decision["decisions"])
    if len(decided) != len(pauses):
        raise FirebreakError(f"{len(pauses)} escalations wait for a decision; {len(decided)} decisions were sent")
    return [_answer(row, item) for row, item in zip(pauses, decided, strict=True)]


def _answer(row: Escalation, decision: dict[str, Any]) -> Answer:
    """A free-text escalation (a handoff, "what does the user want?") is answered by the decision's message;
    any other takes it as the reviewer's note (what a withheld answer tells the user, say)."""
    message = str(decision["message"]) if decision.get("message") else None
    if not row.options and message:
        return message, None
    return ("approve" if decision.get("type") in ("approve", "accept") else "reject"), message


def server_operator(settings: OperatorsSettings, config: RunnableConfig) -> Operator:
    """Who answers a reviewer's escalation through the server: the user LangGraph Server's auth signed in, with
    the role [operators.people] gives them; without server auth (``langgraph dev`` on this machine) the person
    at this machine, with ``[operators] local_role``."""
    user = _configurable(config).get("langgraph_auth_user_id")
    return configured(settings, str(user), via=VIA) if user else local(settings, via=VIA)


async def decide(agent: Agent, pauses: list[Escalation], decision: Any, config: RunnableConfig) -> RunResult | None:
    """Record the decision on each escalation (the last answer resumes the Firebreak run): a reviewer's as an
    audited operator action, a confirmation as the run's own user."""
    operator = server_operator(agent.services.settings.operators, config)
    result = None
    for row, (answer, note) in zip(pauses, answers(decision, pauses), strict=True):
        if row.audience == "user":
            run = agent.services.runs.get(row.run_id)
            done = await agent.answer(row.id, answer, by=f"user:{run.user_id if run else 'unknown'}")
        else:
            done = await answer_as(agent, operator, row, answer, note=note)
        result = done or result
    return result


async def review(state: ServerState, config: RunnableConfig) -> dict[str, Any]:
    """Pause the server thread until the operator decides, record the decision on the escalation rows, and
    let Firebreak resume its run from its own checkpoint."""
    agent = await shared_agent()
    run_id = state.get("run_id")
    assert run_id is not None, "review follows a waiting run"
    pauses = agent.open_pauses(run_id)
    result: RunResult | None = None
    if pauses:
        # On resume the node runs again from its top: the same open rows, then interrupt() returns the decision.
        result = await decide(agent, pauses, interrupt(review_request(run_id, pauses)), config)
    if result is None:
        # Answered elsewhere (the CLI, the UI, the sweeper) before this thread resumed: read what became of it.
        run = agent.services.runs.get(run_id)
        assert run is not None
        waiting = run.status == RunStatus.WAITING and not agent.open_pauses(run_id)
        result = await agent.resume_answered(run_id) if waiting else None
        result = result or run_result(agent.services, agent.services.runs.get(run_id) or run)
    return settled(result)


def after_run(state: ServerState) -> str:
    return "review" if state.get("status") == RunStatus.WAITING else END


def server_graph() -> Any:
    """The outer graph LangGraph Server runs; the server gives it its checkpointer."""
    builder = StateGraph(ServerState)
    builder.add_node("ask", ask)
    builder.add_node("review", review)
    builder.add_edge(START, "ask")
    builder.add_conditional_edges("ask", after_run, ["review", END])
    builder.add_conditional_edges("review", after_run, ["review", END])
    return builder.compile(name="firebreak")


graph = server_graph()
