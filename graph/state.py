"""Graph state and per-run context.

State is what the checkpointer persists between steps (the conversation and
the loop's progress). The context is what a run is given and does not persist:
ids, the deadline and the services. Large things live in the database and are
referenced by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from app.canary.release import ReleaseSpec

if TYPE_CHECKING:
    from app.services import Services
    from app.tools.registry import ToolRegistry


SOLO_AGENT = "firebreak"  # the agent name of a run that is not a team member: a person asked it


class Breach(TypedDict):
    """A cap a call hit (``nodes.budget_guard.breach``): ``budget_guard`` turns it into an escalation."""

    scope: str  # request:<run id>, session:<thread id> or day:<tenant>:<date>; its kind names the [limits] table
    resource: str
    limit: float
    used: float
    requested: float
    message: str  # the refusal as BudgetExceeded says it
    resume_to: str  # the node whose call was refused: where the run goes on once the cap is raised


class Pending(TypedDict):
    """The escalations ``hitl`` waits for, and where it sends the run once they are answered."""

    ids: list[str]
    resume_to: str


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int
    status: str  # a RunStatus value, kept plain: a checkpoint holds no enum (it would need an allowlist)
    answer: str
    stop_detail: str  # why observe stopped the loop, for respond to explain
    # Containment, reset by every run:
    verdicts: dict[str, str]  # call id (or "answer") -> execute | approved | rejected | hedge, from the gate and hitl
    gate_ids: dict[str, int]  # call id -> its gate_decisions row, to record the outcome
    rejected: list[str]  # actions a person rejected in this run: never proposed into execution again
    breach: Breach | None  # a cap a call hit; budget_guard turns it into an escalation
    escalation: Pending | None  # hitl waits for these answers
    resume_to: str  # where hitl sends the run once the answers are in
    pauses: int  # escalations so far in this run: part of each escalation's stable id
    cache: dict[str, Any] | None  # {"scope": digest, "hit": {similarity, matched, …} | None} from cache_lookup
    flagged: bool  # screen_input flagged the question (a jailbreak attempt): its answer is never cached
    # Replanning, reset by every run:
    planning: bool  # this run plans first ([planner] enabled, or asked for)
    plan: dict[str, Any] | None  # {"version": n, "goal": …, "steps": [...]}: the current plan_versions row
    replans: int  # full replans so far (a local patch is not one); at [planner] max_replans a person decides


@dataclass(frozen=True)
class RunContext:
    """Everything a node may need that is not conversation state."""

    services: Services
    run_id: str
    thread_id: str
    tenant_id: str
    user_id: str
    route: str
    deadline: float  # time.monotonic() value after which the run must stop
    stream_tokens: bool = True  # False when nobody reads tokens: models then answer in one piece
    graph_digest: str = ""  # GraphBuilder.digest() of the running graph: part of the cache's scope
    agent: str = SOLO_AGENT  # the run's role in a team; who changed a shared entity
    correlation_id: str = ""  # the team run this run belongs to (its own id when alone)
    release: ReleaseSpec | None = None  # the agent version serving the run; None: [agent] as configured
    arm: str | None = None  # control | canary while a rollout runs

    @property
    def system_prompt(self) -> str:
        return self.release.system_prompt if self.release else self.services.settings.agent.system_prompt

    @property
    def tools(self) -> ToolRegistry:
        """The tools this run may see and call: a team member also gets the team's (the shared tickets)."""
        return self.services.tools if self.agent == SOLO_AGENT else self.services.team_tools

    @property
    def ids(self) -> dict[str, Any]:
        return {
            "firebreak.run_id": self.run_id,
            "gen_ai.conversation.id": self.thread_id,
            "firebreak.tenant_id": self.tenant_id,
            "firebreak.user_id": self.user_id,
        }

    @property
    def release_attributes(self) -> dict[str, Any]:
        """The version and route every span of the run carries (see ``app.telemetry.INHERITED_ATTRIBUTES``)."""
        attributes: dict[str, Any] = {"firebreak.route": self.route}
        if self.release is not None:
            attributes |= {
                "service.version": self.release.name,
                "firebreak.release": self.release.name,
                "firebreak.release.digest": self.release.digest,
            }
        if self.arm is not None:
            attributes["firebreak.canary.arm"] = self.arm
        return attributes
