"""Plans as data: a DAG of steps the model proposes as constrained JSON and code validates and edits.

A step names the tool it will call (or none: a step the model does itself,
such as writing the report), its inputs, the steps it depends on and its
status. Code, not the model, advances statuses, patches a failed step with its
tool's declared substitute, and checks every plan the model writes: unique
ids, known dependencies, no cycles, tools that exist, at most ``max_steps``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import PlanInvalid

StepStatus = Literal["pending", "done", "failed", "dropped"]
PLAN_TOOL = "submit_plan"


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=16, description="A short id such as s1")
    tool: str | None = Field(default=None, description="The tool this step calls; null for the final answer")
    inputs: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments")
    depends_on: list[str] = Field(default_factory=list, description="Ids of the steps this one needs first")
    why: str = Field(default="", max_length=60)
    status: StepStatus = "pending"
    note: str = Field(default="", max_length=500, description="What happened: the failure, the substitute")


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: str = Field(default="", max_length=500)
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def ready(self) -> list[Step]:
        """Pending steps whose dependencies are all done: what may run next."""
        done = {s.id for s in self.steps if s.status == "done"}
        return [s for s in self.steps if s.status == "pending" and set(s.depends_on) <= done]


def plan_tool_spec(tools: Iterable[str], max_steps: int) -> dict[str, Any]:
    """The function spec the planner forces. Its JSON schema constrains the output: tool names, and step
    ids ``s1``… so that dependencies name steps (a small model otherwise fills them with tool names)."""
    schema = Plan.model_json_schema()
    schema["properties"].pop("goal")  # code sets these, not the model
    schema["properties"]["steps"]["maxItems"] = max_steps
    step = schema["$defs"]["Step"]["properties"]
    for hidden in ("status", "note"):
        step.pop(hidden)
    ids = [f"s{n}" for n in range(1, max_steps + 1)]
    step["id"] = {"type": "string", "enum": ids}
    step["depends_on"].update(items={"type": "string", "enum": ids}, maxItems=max_steps - 1, uniqueItems=True)
    step["tool"]["anyOf"] = [{"type": "string", "enum": sorted(tools)}, {"type": "null"}]
    return {
        "type": "function",
        "function": {
            "name": PLAN_TOOL,
            "description": "Submit the plan: the steps to reach the goal, each with its tool and inputs.",
            "parameters": schema,
        },
    }


def parse_plan(raw: str | dict[str, Any], *, tools: Iterable[str], max_steps: int) -> Plan:
    """Validate the model's plan; :class:`PlanInvalid` says what is wrong in words the model can act on."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        plan = Plan.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise PlanInvalid(f"the plan is not valid: {_first_error(exc)}") from exc
    plan = Plan(goal=plan.goal, steps=[s.model_copy(update={"status": "pending", "note": ""}) for s in plan.steps])
    check_plan(plan, tools=tools, max_steps=max_steps)
    return plan


def check_plan(plan: Plan, *, tools: Iterable[str], max_steps: int) -> None:
    known = set(tools)
    ids = [s.id for s in plan.steps]
    if len(ids) > max_steps:
        raise PlanInvalid(f"the plan has {len(ids)} steps; at most {max_steps} are allowed")
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise PlanInvalid(f"step ids must be unique; repeated: {', '.join(duplicates)}")
    for step in plan.steps:
        if step.tool is not None and step.tool not in known:
            raise PlanInvalid(f"step {step.id} uses unknown tool {step.tool!r}; available: {', '.join(sorted(known))}")
        if missing := [d for d in step.depends_on if d not in ids]:
            raise PlanInvalid(f"step {step.id} depends on unknown steps: {', '.join(missing)}")
    if cycle := _cycle(plan):
        raise PlanInvalid(f"the steps depend on each other in a cycle: {' → '.join(cycle)}")


def _cycle(plan: Plan) -> list[str] | None:
    needs = {s.id: s.depends_on for s in plan.steps}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        if state.get(node) == "open":
            return [*path[path.index(node) :], node]
        if state.get(node) == "closed":
            return None
        state[node] = "open"
        for dependency in needs[node]:
            if found := visit(dependency, [*path, node]):
                return found
        state[node] = "closed"
        return None

    return next((found for node in needs if (found := visit(node, [])) is not None), None)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "plan"
        return f"{where}: {error['msg']}"
    return str(exc)


def record_result(plan: Plan, tool: str, ok: bool, note: str = "") -> tuple[Plan, Step | None]:
    """Mark the step that ``tool``'s call carried out (the first ready one for it, else any pending one)."""
    candidates = [s for s in plan.ready() if s.tool == tool] or [
        s for s in plan.steps if s.status == "pending" and s.tool == tool
    ]
    if not candidates:
        return plan, None  # a call the plan did not foresee: executed, but not a step
    step = candidates[0].model_copy(update={"status": "done" if ok else "failed", "note": note[:500]})
    return _replace(plan, step.id, [step]), step


def substitute_step(plan: Plan, failed: Step, tool: str) -> Plan:
    """The local patch: drop ``failed``, run ``tool`` with the same inputs, and let dependents wait on it."""
    patch = Step(
        id=_fresh_id(plan, f"{failed.id}b"),
        tool=tool,
        inputs=failed.inputs,
        depends_on=failed.depends_on,
        why=f"substitute for {failed.tool}, which failed",
    )
    dropped = failed.model_copy(update={"status": "dropped", "note": f"{failed.note} → replaced by {patch.id}"})
    patched = _replace(plan, failed.id, [dropped, patch])
    return Plan(
        goal=patched.goal,
        steps=[
            s.model_copy(update={"depends_on": [patch.id if d == failed.id else d for d in s.depends_on]})
            for s in patched.steps
        ],
    )


def _replace(plan: Plan, step_id: str, steps: list[Step]) -> Plan:
    index = next(i for i, s in enumerate(plan.steps) if s.id == step_id)
    return Plan(goal=plan.goal, steps=plan.steps[:index] + steps + plan.steps[index + 1 :])


def _fresh_id(plan: Plan, wanted: str) -> str:
    taken = {s.id for s in plan.steps}
    candidate, n = wanted, 2
    while candidate in taken:
        candidate, n = f"{wanted}{n}", n + 1
    return candidate


MARKS: dict[StepStatus, str] = {"done": "done", "failed": "FAILED", "dropped": "dropped", "pending": "to do"}


def render(plan: Plan, version: int) -> str:
    """The plan as the model reads it before each decision: what is done, what failed, what is next."""
    ready = {s.id for s in plan.ready()}
    lines = [f"Plan (version {version}){': ' + plan.goal if plan.goal else ''}. Follow it; the next step is marked."]
    for step in plan.steps:
        call = f"{step.tool}({json.dumps(step.inputs, sort_keys=True)})" if step.tool else "answer the user"
        marker = "NEXT" if step.id in ready else MARKS[step.status]
        detail = f" — {step.note}" if step.note else ""
        lines.append(f"- {step.id} [{marker}] {call}{detail}")
    return "\n".join(lines)
