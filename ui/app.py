"""The Gradio UI: a streaming chat with threads (a run that waits for a person says so there), an
Inbox tab where a reviewer answers open escalations (and the run resumes), a Traces tab that draws each
run's span tree, a Resilience tab that shows every backend's circuit breaker, its recent transitions and the
blast-radius budgets (usage against the caps per request, session and tenant day), a
Runs & DLQ tab with the run queue's counts, recent runs, the dead-letter queue (to inspect and
requeue) and recent alerts, and an Ops tab that plots latency, errors, cost, tokens, cache hits and
dead letters per route or release over time, beside breaker states, budget use and waiting escalations, and
a Canary tab that starts, promotes and rolls back a release and shows both arms side by side.

Every view and action is the operator's (app/operators.py): on 127.0.0.1 the local person with
``[operators] local_role``; bound anywhere else (or with no local role) the page asks for an operator's
name and token, and each operator sees only their tenants' rows. Every action is an audit row.

``launch(settings)`` serves it on ``settings.ui.host:port``; ``start(settings)`` does the same
without blocking, for tests and embedding apps (close it with ``demo.close()``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import gradio as gr

from app.canary.controller import Canary
from app.canary.report import rollout_report
from app.dashboards import DEFAULT_WINDOW_S, Figures, OpsReport, RunFilter, find_runs, ops_report, run_facets
from app.operators import (
    Operator,
    acting,
    authenticate,
    configured,
    find_attention,
    invalidate_as,
    local,
    needs_attention,
    requeue_as,
    visible_actions,
)
from app.planning.report import plan_report
from app.services import Services, build_services
from app.traces import trace_lines
from core.config import Settings
from core.errors import ConfigError, FirebreakError, OperatorRefused
from graph.agent import Agent, RunResult, Token
from graph.answers import answer_as
from graph.sweeper import sweeping
from graph.team import run_team
from memory.audit import AuditLog
from memory.escalations import EscalationStore
from memory.events import is_event_letter
from memory.queue import QueueStore
from memory.shared_state import EntityStore
from memory.tables import Escalation, Rollout
from ui import render
from ui.canary import CANARY_CSS, canary_html

CHAT_TAB, INBOX_TAB, TRACES_TAB, RESILIENCE_TAB, QUEUE_TAB, CACHE_TAB, OPS_TAB, CANARY_TAB, TEAM_TAB = (
    "chat",
    "inbox",
    "traces",
    "resilience",
    "queue",
    "cache",
    "ops",
    "canary",
    "team",
)
OPEN_ESCALATIONS = 200
RECENT_ANSWERED = 20
THREAD_ESCALATIONS = 500
RECENT_RUNS = 50
RECENT_TRANSITIONS = 100
RECENT_ALERTS = 20
RECENT_ACTIONS = 50
THREAD_HISTORY_RUNS = 100
OPS_WINDOWS = [
    ("last 15 min", 900.0),
    ("last hour", 3600.0),
    ("last 24 h", DEFAULT_WINDOW_S),
    ("last 7 days", 604_800.0),
]
OPS_GROUPS = ("route", "release")
ANY = ("any", "")  # a run filter's choice that matches every value
Messages = list[dict[str, Any]]


class AgentSlot:
    """The UI's one Agent, opened on first use inside Gradio's event loop (the lifespan's escalation sweeper
    uses it from the server's start) and closed with the server.

    It cannot be opened before the server starts: the checkpointer's async connection belongs to
    the loop that opened it, and Gradio runs async handlers on uvicorn's loop.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock  # the agent's wall clock, injected by tests that move deadlines by hand
        self._agent: Agent | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Agent | None:
        """The agent if it was opened (by the sweeper or a first request), else None."""
        return self._agent

    async def get(self) -> Agent:
        # The lock stops two first requests from opening two agents (and two connections).
        async with self._lock:
            if self._agent is None:
                services = build_services(self._settings, clock=self._clock)
                self._agent = await Agent.create(self._settings, services=services)
            return self._agent

    async def close(self) -> None:
        async with self._lock:
            if self._agent is not None:
                await self._agent.close()
                self._agent = None

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """A FastAPI lifespan: while the server runs, its agent sweeps overdue escalations every
        ``[escalation] sweep_period_s`` (``graph/sweeper.py``), so deadlines pass with the Inbox closed;
        closing on server shutdown runs on the same loop that opened the agent."""
        async with sweeping(self.get, self._settings.escalation.sweep_period_s):
            yield
        await self.close()


def _assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


async def _agent(slot: AgentSlot) -> Agent:
    """The agent; an unreachable store becomes a readable message in the page, not a bare "Error"."""
    try:
        return await slot.get()
    except FirebreakError as exc:
        raise gr.Error(str(exc)) from exc


async def _services(slot: AgentSlot) -> Services:
    return (await _agent(slot)).services


def _waiting_for(agent: Agent, result: RunResult) -> list[Escalation]:
    """The rows a waiting run waits for (the result names them; the rows carry the reasons)."""
    rows = (agent.services.escalations.get(item["id"]) for item in result.escalations)
    return [row for row in rows if row is not None]


def _result_message(agent: Agent, result: RunResult) -> str:
    """The assistant's message for a finished (or paused) run, with its run line."""
    usage = result.usage
    line = render.run_line(result.run_id, result.status, usage.input_tokens, usage.output_tokens, usage.cost_usd)
    if result.cache:
        line = f"{render.cache_line(result.cache)}\n{line}"
    if result.status == "waiting":
        return f"{render.waiting_message(_waiting_for(agent, result))}\n\n{line}"
    return render.answer_message(result.answer, result.status, result.error, line)


def _recently_closed(store: EscalationStore, operator: Operator) -> list[Escalation]:
    rows = [*store.list(status="answered", limit=RECENT_ANSWERED), *store.list(status="expired", limit=RECENT_ANSWERED)]
    rows = [row for row in rows if operator.sees(row.tenant_id)]
    rows.sort(key=lambda row: row.answered_at or row.created_at, reverse=True)
    return rows[:RECENT_ANSWERED]


def _option_picker(row: Escalation | None) -> gr.Radio:
    """The picked escalation's options, nothing chosen; hidden when its answer is free text."""
    options = list(row.options) if row is not None else []
    return gr.Radio(choices=options, value=None, visible=bool(options))


def operator_of(settings: Settings, request: gr.Request | None) -> Operator:
    """Who uses this page: the operator who logged in, else (a UI bound to loopback) the local person."""
    name = getattr(request, "username", None)
    if name:
        return configured(settings.operators, name, via="ui")
    return local(settings.operators, via="ui")


def needs_login(settings: Settings) -> bool:
    """A UI reachable from other machines, or one with no local role, asks every visitor to log in."""
    host = settings.ui.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        loopback = False
    return not loopback or not settings.operators.local_role


def _readable(operator: Operator, *, fleet: bool = False) -> Operator:
    """``operator`` if they may read this view (``fleet``: one of breakers, budgets, ops, canary), else an
    error on the page saying why."""
    refusal = operator.read_refusal(fleet=fleet)
    if refusal is not None:
        raise gr.Error(refusal)
    return operator


def _chat_tenant(operator: Operator, settings: Settings) -> str:
    """The tenant the page's chat and team runs act for: an operator's (first) tenant, else the configured one."""
    return operator.tenants[0] if operator.tenants else settings.identity.default_tenant


async def _queue(slot: AgentSlot) -> QueueStore:
    return QueueStore((await _services(slot)).engine)


def _filter_choice(values: list[str], kept: str) -> gr.Dropdown:
    """A run filter's dropdown over the values present, showing ``kept``."""
    return gr.Dropdown(choices=[ANY, *values], value=kept)


def _ops_plot(
    kind: type[gr.ScatterPlot] | type[gr.BarPlot], elem_id: str, title: str, *, y: str, color: str | None = "group"
) -> gr.ScatterPlot | gr.BarPlot:
    """An empty Ops plot of ``y`` over time, one colour per ``color`` value; the Ops views fill it.

    Rates and latencies are points, one per bucket: a line plot draws nothing for a lone bucket.
    """
    return kind(
        x=render.TIME_COLUMN, y=y, color=color, title=title, x_title=render.TIME_COLUMN, height=260, elem_id=elem_id
    )


def _series(report: OpsReport, group: str) -> list[Figures]:
    return report.route_series if group == "route" else report.release_series


async def _trace_view(slot: AgentSlot, run_id: str, operator: Operator) -> str:
    run_id = run_id.strip()
    if not run_id:
        return render.trace_html("", None, [])
    services = await _services(slot)
    runs = services.runs
    run = runs.get(run_id)
    if run is not None and not _readable(operator).sees(run.tenant_id):
        # Another tenant's run reads exactly like a run that does not exist.
        return render.trace_html(run_id, None, [])
    trace = render.trace_html(run_id, run, trace_lines(runs.spans(run_id)))
    if run is None:
        return trace
    plan = render.plan_html(plan_report(services.plans.versions(run_id), runs.events(run_id)))
    changes = render.entity_changes_html(EntityStore(services.engine).changes_in(run.correlation_id or run.id))
    return plan + changes + trace


def build_ui(settings: Settings, *, route: str | None = None, agent: AgentSlot | None = None) -> gr.Blocks:
    """The Blocks app; pass ``agent`` to own its lifetime (``start`` closes it with the server).

    ``route`` (``firebreak ui --model``) pins the chat and team runs to that route and the stable release;
    without it each run is served by whatever rollout its user is in, as on every other entry path."""
    slot = agent or AgentSlot(settings)

    async def send(
        question: str, history: Messages, thread_id: str, plan_first: bool, request: gr.Request
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Stream one run into the chat: the growing answer, then the answer with its run line."""
        thread_id = thread_id.strip() or str(uuid.uuid4())
        # An empty question gets no bubble of its own, only the message saying why it was refused.
        asked = [{"role": "user", "content": question}] if question.strip() else []
        history = [*history, *asked, _assistant("…")]
        yield history, "", thread_id, gr.skip()
        answer = ""
        try:
            agent = await slot.get()
            # A logged-in operator chats as themselves, in their (first) tenant; the local person as the
            # configured identity (see [identity] and [operators] in firebreak.toml).
            operator, identity = operator_of(settings, request), settings.identity
            async for item in agent.stream(
                question,
                thread_id=thread_id,
                route=route,
                tenant_id=_chat_tenant(operator, settings),
                user_id=identity.default_user if operator.local else operator.name,
                plan=plan_first,
            ):
                if isinstance(item, Token):
                    answer += item.text
                    history[-1] = _assistant(answer)
                    yield history, gr.skip(), gr.skip(), gr.skip()
                elif isinstance(item, RunResult):
                    # A waiting run asks its question here; a "yes"/"no" typed next answers a confirmation.
                    history[-1] = _assistant(_result_message(agent, item))
                    yield history, gr.skip(), gr.skip(), item.run_id
        except FirebreakError as exc:
            history[-1] = _assistant(render.error_message(exc))
            yield history, gr.skip(), gr.skip(), gr.skip()

    async def open_thread(thread_id: str, request: gr.Request) -> Messages:
        """Show an earlier thread's questions, escalations and answers so the user can continue it."""
        thread_id = thread_id.strip()
        if not thread_id:
            return []
        services = await _services(slot)
        operator = _readable(operator_of(settings, request))
        runs = [
            run
            for run in services.runs.recent(limit=THREAD_HISTORY_RUNS, thread_id=thread_id)
            if operator.sees(run.tenant_id)
        ]
        by_run: dict[str, list[Escalation]] = {}
        for row in services.escalations.list(status=None, thread_id=thread_id, limit=THREAD_ESCALATIONS):
            by_run.setdefault(row.run_id, []).append(row)
        return [message for run in reversed(runs) for message in render.run_messages(run, by_run.get(run.id, []))]

    def new_thread() -> tuple[Messages, str, str]:
        return [], str(uuid.uuid4()), ""

    async def recent_runs(status: str, route_: str, release: str, tenant: str, request: gr.Request) -> gr.Dropdown:
        """The newest runs matching the filters (and that the operator may see); empty matches every run."""
        operator = _readable(operator_of(settings, request))
        which = RunFilter(status or None, route_ or None, release or None, tenant or None)
        runs = find_runs((await _services(slot)).engine, which, limit=RECENT_RUNS)
        return gr.Dropdown(choices=[render.run_choice(run) for run in runs if operator.sees(run.tenant_id)])

    async def run_picker(
        status: str, route_: str, release: str, tenant: str, request: gr.Request
    ) -> tuple[gr.Dropdown, ...]:
        """The filters over the values runs have now, and the runs they match."""
        operator = _readable(operator_of(settings, request))
        facets = run_facets((await _services(slot)).engine)
        tenants = [name for name in facets.tenants if operator.sees(name)]
        present = (facets.statuses, facets.routes, facets.releases, tenants)
        # A pick stays while some run still has that value; otherwise the filter goes back to "any".
        kept = [
            current if current in values else ""
            for current, values in zip((status, route_, release, tenant), present, strict=True)
        ]
        filters = [_filter_choice(values, pick) for values, pick in zip(present, kept, strict=True)]
        return (*filters, await recent_runs(kept[0], kept[1], kept[2], kept[3], request))

    async def show_run(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Switch to the Traces tab and draw ``run_id``."""
        if not run_id:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.Tabs(selected=TRACES_TAB), run_id, await _trace_view(slot, run_id, operator_of(settings, request))

    async def on_load(request: gr.Request) -> tuple[Any, ...]:
        """Open the run named by ``?run=<id>`` (the chat's trace links), and fill the filters and runs list."""
        picker = await run_picker("", "", "", "", request)
        run_id = request.query_params.get("run", "")
        return (*(await show_run(run_id, request)), *picker)

    async def pick_run(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not run_id:
            return gr.skip(), gr.skip()
        return run_id, await _trace_view(slot, run_id, operator_of(settings, request))

    async def view_run(run_id: str, request: gr.Request) -> str:
        return await _trace_view(slot, run_id, operator_of(settings, request))

    async def inbox_views(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Pass up or expire overdue escalations, then: the open ones (keeping the pick while it is open),
        the picked one's detail and options, and the recently answered ones (those the operator may see)."""
        operator = _readable(operator_of(settings, request))
        agent = await _agent(slot)
        try:
            await agent.sweep()
        except FirebreakError as exc:
            raise gr.Error(f"could not pass up overdue escalations: {exc}") from exc
        store = agent.services.escalations
        now = agent.services.clock()
        rows = [row for row in store.list(status="open", limit=OPEN_ESCALATIONS) if operator.sees(row.tenant_id)]
        picked = next((row for row in rows if row.id == selected), None)
        return (
            render.escalations_html(rows, now),
            gr.Dropdown(
                choices=[render.escalation_choice(row) for row in rows], value=None if picked is None else picked.id
            ),
            render.escalation_detail_html(picked, now),
            # A still-open pick keeps the option the reviewer may have chosen already.
            _option_picker(None) if picked is None else gr.skip(),
            render.answered_html(_recently_closed(store, operator)),
        )

    async def pick_escalation(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        operator = _readable(operator_of(settings, request))
        services = await _services(slot)
        row = services.escalations.get(selected) if selected else None
        row = row if row is not None and operator.sees(row.tenant_id) else None
        return render.escalation_detail_html(row, services.clock()), _option_picker(row), ""

    async def answer_escalation(
        selected: str | None, option: str | None, text: str, note: str, request: gr.Request
    ) -> tuple[Any, ...]:
        """Answer the picked escalation as the operator: its option, else the written answer; show what the
        resumed run did."""
        agent = await _agent(slot)
        row = agent.services.escalations.get(selected) if selected else None
        answer = (option or "").strip() or text.strip()
        cleared: tuple[Any, ...] = (gr.skip(), gr.skip())
        if row is None:
            message = "Pick an escalation to answer."
        elif not answer:
            message = "Choose one of its options or write an answer." if row.options else "Write an answer."
        else:
            try:
                operator = operator_of(settings, request)
                result = await answer_as(agent, operator, row, answer, note=note.strip() or None)
            except FirebreakError as exc:
                message = render.answer_error(exc)
            else:
                message, cleared = render.answer_outcome(row, answer, result), ("", "")
        return (message, *cleared, *(await inbox_views(selected, request)))

    async def resilience_views(request: gr.Request) -> tuple[str, str, str]:
        """Every breaker with its state, the latest transitions (newest first), and the budgets' usage."""
        operator = operator_of(settings, request)
        if operator.tenants:  # on every page load: say why it is empty rather than raise an error
            scope = ", ".join(operator.tenants)
            notice = f"{operator.name} acts only for {scope}: breakers and budgets cover every tenant."
            return render.empty_html(notice), "", ""
        _readable(operator)
        services = await _services(slot)
        store = services.breakers.store
        limits = services.settings.limits
        return (
            render.breakers_html(store.all(), time.time()),
            render.transitions_html(store.transitions(limit=RECENT_TRANSITIONS)),
            render.budgets_html(
                services.limits.store.usage(),
                {"request": limits.request, "session": limits.session, "day": limits.day},
            ),
        )

    async def queue_views(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Counts, recent runs, what needs an operator (every run that did not end cleanly, with its action),
        the dead letters (keeping the pick while it is still dead), its detail, alerts; the runs and letters
        only of tenants the operator may see."""
        operator = _readable(operator_of(settings, request))
        services = await _services(slot)
        store = QueueStore(services.engine)
        letters = [letter for letter in store.dead_letters() if operator.sees(letter.tenant_id)]
        picked = next((letter for letter in letters if str(letter.id) == selected), None)
        attention = needs_attention(services.engine, operator, now=time.time())
        return (
            render.queue_counts_html(store.counts()),
            render.runs_html([run for run in services.runs.recent(limit=RECENT_RUNS) if operator.sees(run.tenant_id)]),
            render.attention_html(attention),
            gr.Dropdown(
                choices=[render.attention_choice(item) for item in attention if item.action == "requeue"], value=None
            ),
            render.dead_letters_html(letters),
            gr.Dropdown(
                choices=[render.dead_letter_choice(letter) for letter in letters],
                value=None if picked is None else str(picked.id),
            ),
            render.dead_letter_detail_html(picked),
            # Alerts name runs and tenants across the fleet: for operators of every tenant only.
            render.alerts_html([] if operator.tenants else store.alerts(limit=RECENT_ALERTS)),
            render.actions_html(visible_actions(AuditLog(services.engine), operator, limit=RECENT_ACTIONS)),
        )

    async def pick_dead_letter(selected: str | None, request: gr.Request) -> str:
        operator = _readable(operator_of(settings, request))
        letter = (await _queue(slot)).dead_letter(int(selected)) if selected else None
        return render.dead_letter_detail_html(letter if letter and operator.sees(letter.tenant_id) else None)

    async def requeue_one(target: str, request: gr.Request) -> str:
        """Requeue ``target`` (a run id or event:<dead letter id>) as the operator; what came of it."""
        store = await _queue(slot)
        operator, now = operator_of(settings, request), time.time()
        try:
            item = find_attention(store.engine, replace(operator, tenants=()), target, now=now)
            moved = requeue_as(store, operator, item, now=now, max_attempts=settings.queue.max_attempts)
        except FirebreakError as exc:
            return f"Not requeued: {exc}"
        what = f"{item.kind} `{target}`"
        return f"Requeued {what}." if moved else f"The {what} is no longer dead: nothing to requeue."

    async def requeue(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Requeue the picked dead letter's run (or event); the views then show the list without it."""
        letter = (await _queue(slot)).dead_letter(int(selected)) if selected else None
        if letter is None:
            message = "Pick a dead letter to requeue."
        else:
            message = await requeue_one(f"event:{letter.id}" if is_event_letter(letter) else letter.run_id, request)
        return (message, *(await queue_views(None, request)))

    async def requeue_target(target: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Requeue the picked run (one that failed in the chat, `ask` or the API, say) or event."""
        message = await requeue_one(target, request) if target else "Pick a run or event to requeue."
        return (message, *(await queue_views(None, request)))

    async def requeue_all(request: gr.Request) -> tuple[Any, ...]:
        """Requeue everything the view says to requeue that the operator may see."""
        store = await _queue(slot)
        operator, now = operator_of(settings, request), time.time()
        targets = [item for item in needs_attention(store.engine, operator, now=now) if item.action == "requeue"]
        max_attempts = settings.queue.max_attempts
        try:
            requeued = [requeue_as(store, operator, item, now=now, max_attempts=max_attempts) for item in targets]
            message = f"Requeued {sum(requeued)} of {len(targets)} dead runs." if targets else "Nothing to requeue."
        except FirebreakError as exc:
            message = f"Not requeued: {exc}"
        return (message, *(await queue_views(None, request)))

    async def ops_views(window_s: float, group: str, request: gr.Request) -> tuple[Any, ...]:
        """The Ops plots per ``group`` (route or release), the figures tables and the panels, for the window."""
        _readable(operator_of(settings, request), fleet=True)
        services = await _services(slot)
        report = ops_report(services.engine, services.limits, window_s=float(window_s or DEFAULT_WINDOW_S))
        series = _series(report, group)
        frame = render.ops_frame(series)
        return (
            f"{render.date_time(report.since.timestamp())} to {render.date_time(report.until.timestamp())} UTC, "
            f"in buckets of {render.duration_text(report.bucket_s)} · plots per {group}",
            render.latency_frame(series),
            frame,
            frame,
            frame,
            frame,
            render.dead_letter_frame(report.dead_letters),
            render.ops_figures_html(report.by_route, "Route"),
            render.ops_figures_html(report.by_release, "Release"),
            render.breaker_states_html(report.breakers, report.breakers_not_closed),
            render.escalations_waiting_html(report.escalations),
            render.budget_lines_html(report.budgets),
            render.alerts_html(QueueStore(services.engine).alerts(limit=RECENT_ALERTS)),
        )

    async def canary_view(request: gr.Request) -> str:
        """The stable release and the active (or latest) rollout, both arms side by side."""
        _readable(operator_of(settings, request), fleet=True)
        return canary_html(rollout_report((await _services(slot)).canary))

    async def canary_action(
        request: gr.Request, action: str, act: Callable[[Canary, str], Rollout], target: str, detail: str = ""
    ) -> tuple[str, str]:
        """Do ``act(canary, operator name)`` as the audited ``action``; the message says what happened, or why not."""
        services = await _services(slot)
        canary, operator = services.canary, operator_of(settings, request)
        try:
            with acting(AuditLog(services.engine), operator, action, target=target, detail=detail):
                rollout = act(canary, operator.name)
        except FirebreakError as exc:
            return str(exc), canary_html(rollout_report(canary))
        message = f"Rollout {rollout.id} of {rollout.release}: {rollout.status} at {rollout.steps[rollout.step]:g}%."
        return message, canary_html(rollout_report(canary))

    async def start_rollout(release: str | None, request: gr.Request) -> tuple[str, str]:
        name = (release or "").strip()
        return await canary_action(request, "canary.start", lambda canary, by: canary.start(name, by=by), name)

    async def promote_rollout(request: gr.Request) -> tuple[str, str]:
        return await canary_action(
            request, "canary.promote", lambda canary, by: canary.promote(by=by), "active rollout", "one step"
        )

    async def roll_back(reason: str, request: gr.Request) -> tuple[str, str]:
        reason = reason.strip() or "rolled back by hand"
        return await canary_action(
            request,
            "canary.rollback",
            lambda canary, by: canary.rollback(by=by, reason=reason),
            "active rollout",
            reason,
        )

    async def run_team_on(ticket: str, ask: str, request: gr.Request) -> str:
        """Run the research → writer → reviewer team on a ticket; show its runs and the ticket's new versions."""
        ticket, ask = ticket.strip(), ask.strip()
        if not ticket or not ask:
            return render.team_html(None, [], "Name a ticket and say what the team should do.")
        operator = operator_of(settings, request)
        agent = await slot.get()
        try:
            result = await run_team(
                agent,
                ask,
                ticket=ticket,
                route=route,
                tenant_id=_chat_tenant(operator, settings),
            )
        except FirebreakError as exc:
            return render.team_html(None, [], str(exc))
        return render.team_html(result, EntityStore(agent.services.engine).changes_in(result.correlation_id), "")

    async def cache_views(request: gr.Request) -> tuple[str, str]:
        """Entries and hits per layer, tenant and route, and the most recently used answers (of the operator's
        tenants)."""
        operator = _readable(operator_of(settings, request))
        store = (await _services(slot)).cache.store
        now = time.time()
        stats = [row for row in store.stats(now=now) if operator.sees(row["tenant_id"])]
        entries = [entry for entry in store.recent(limit=RECENT_RUNS, now=now) if operator.sees(entry.tenant_id)]
        return render.cache_stats_html(stats), render.cache_entries_html(entries)

    async def invalidate_cache(tenant: str, entry: str, request: gr.Request) -> tuple[str, ...]:
        """Drop one entry (by id) or every entry of one tenant; both empty refuses rather than wiping everything."""
        tenant, entry = tenant.strip(), entry.strip().lstrip("#")
        if not tenant and not entry:
            message = "Name a tenant or an entry id to invalidate (`firebreak cache invalidate --all` empties it)."
        elif entry and not entry.isdigit():
            message = f"Entry id {entry!r} is not a number."
        else:
            store = (await _services(slot)).cache.store
            selectors = {"tenant_id": tenant or None, "entry_id": int(entry) if entry else None}
            chosen = {name: value for name, value in selectors.items() if value is not None}
            try:
                removed = invalidate_as(store, operator_of(settings, request), now=time.time(), **chosen)
                message = f"Removed {removed} cache entr{'y' if removed == 1 else 'ies'}."
            except OperatorRefused as exc:
                message = f"Not invalidated: {exc}"
        return (message, *(await cache_views(request)))

    with gr.Blocks(title="Firebreak", analytics_enabled=False) as demo:
        last_run = gr.State("")
        with gr.Tabs(selected=CHAT_TAB, elem_id="tabs") as tabs:
            with gr.Tab("Chat", id=CHAT_TAB, elem_id="chat-tab"):
                with gr.Row():
                    thread_box = gr.Textbox(
                        label="Thread id",
                        placeholder="empty: a new thread starts with your next question",
                        info="Paste an earlier thread id and press Enter to continue it.",
                        elem_id="thread-id",
                        scale=4,
                    )
                    new_thread_btn = gr.Button("New thread", elem_id="new-thread", scale=1)
                    plan_first = gr.Checkbox(
                        label="Plan first",
                        value=settings.planner.enabled,
                        info="The model writes a plan; failed steps are patched or replanned (see Traces).",
                        elem_id="plan-first",
                        scale=1,
                    )
                chatbot = gr.Chatbot(label=f"Firebreak · route {route or 'by release'}", elem_id="chat", height=480)
                with gr.Row():
                    question_box = gr.Textbox(
                        show_label=False, placeholder="Ask a question…", elem_id="question", scale=6, lines=1
                    )
                    send_btn = gr.Button("Send", variant="primary", elem_id="send", scale=1)
                    show_trace_btn = gr.Button("Show trace", elem_id="show-trace", scale=1)
            with gr.Tab("Inbox", id=INBOX_TAB, elem_id="inbox-tab") as inbox_tab:
                refresh_inbox_btn = gr.Button("Refresh", elem_id="refresh-inbox")
                gr.Markdown("### Open escalations")
                inbox_view = gr.HTML(
                    render.escalations_html([], time.time()), css_template=render.INBOX_CSS, elem_id="inbox-open"
                )
                inbox_pick = gr.Dropdown(label="Escalation", choices=[], elem_id="inbox-pick")
                inbox_detail = gr.HTML(
                    render.escalation_detail_html(None, time.time()),
                    css_template=render.INBOX_CSS,
                    elem_id="inbox-detail",
                )
                inbox_option = gr.Radio(label="Answer", choices=[], visible=False, elem_id="inbox-option")
                with gr.Row():
                    inbox_answer = gr.Textbox(
                        label="Written answer",
                        placeholder="for questions without options (a handoff's reply); an option above wins",
                        elem_id="inbox-answer",
                        lines=2,
                        scale=3,
                    )
                    inbox_note = gr.Textbox(
                        label="Note (optional)",
                        placeholder="why; kept with the answer as labeled data",
                        elem_id="inbox-note",
                        lines=2,
                        scale=2,
                    )
                answer_btn = gr.Button("Answer", variant="primary", elem_id="inbox-answer-button")
                inbox_result = gr.Markdown(elem_id="inbox-result")
                gr.Markdown("### Recently answered")
                answered_view = gr.HTML(
                    render.answered_html([]), css_template=render.INBOX_CSS, elem_id="inbox-answered"
                )
            with gr.Tab("Traces", id=TRACES_TAB, elem_id="traces-tab") as traces_tab:
                with gr.Row():
                    status_filter = gr.Dropdown(label="Status", choices=[ANY], value="", elem_id="filter-status")
                    route_filter = gr.Dropdown(label="Route", choices=[ANY], value="", elem_id="filter-route")
                    release_filter = gr.Dropdown(label="Release", choices=[ANY], value="", elem_id="filter-release")
                    tenant_filter = gr.Dropdown(label="Tenant", choices=[ANY], value="", elem_id="filter-tenant")
                with gr.Row():
                    runs_list = gr.Dropdown(label="Recent runs", choices=[], elem_id="runs-list", scale=5)
                    refresh_btn = gr.Button("Refresh", elem_id="refresh-runs", scale=1)
                with gr.Row():
                    run_box = gr.Textbox(label="Run id", elem_id="run-id", scale=5)
                    view_btn = gr.Button("Show", elem_id="view-run", scale=1)
                trace_view = gr.HTML(
                    render.trace_html("", None, []), css_template=render.TRACE_CSS, elem_id="trace-view"
                )
            with gr.Tab("Resilience", id=RESILIENCE_TAB, elem_id="resilience-tab") as resilience_tab:
                refresh_breakers_btn = gr.Button("Refresh", elem_id="refresh-breakers")
                gr.Markdown("### Circuit breakers")
                breakers_view = gr.HTML(
                    render.breakers_html([], time.time()), css_template=render.BREAKER_CSS, elem_id="breakers-view"
                )
                gr.Markdown("### Recent transitions")
                transitions_view = gr.HTML(
                    render.transitions_html([]), css_template=render.BREAKER_CSS, elem_id="breaker-transitions-view"
                )
                gr.Markdown("### Budgets")
                budgets_view = gr.HTML(
                    render.budgets_html([], {}), css_template=render.BUDGET_CSS, elem_id="budgets-view"
                )
            with gr.Tab("Runs & DLQ", id=QUEUE_TAB, elem_id="queue-tab") as queue_tab:
                refresh_queue_btn = gr.Button("Refresh", elem_id="refresh-queue")
                gr.Markdown("### Run queue")
                counts_view = gr.HTML(
                    render.queue_counts_html({}), css_template=render.QUEUE_CSS, elem_id="queue-counts"
                )
                gr.Markdown("### Recent runs")
                queue_runs_view = gr.HTML(
                    render.runs_html([]), css_template=render.QUEUE_CSS, elem_id="recent-runs-view"
                )
                gr.Markdown("### Needs an operator (every run that did not end with a clean answer)")
                attention_view = gr.HTML(
                    render.attention_html([]), css_template=render.QUEUE_CSS, elem_id="attention-view"
                )
                with gr.Row():
                    attention_pick = gr.Dropdown(
                        label="Run or event to requeue", choices=[], elem_id="attention-pick", scale=4
                    )
                    requeue_target_btn = gr.Button("Requeue", elem_id="requeue-target-button", scale=1)
                gr.Markdown("### Dead letters")
                dead_letters_view = gr.HTML(
                    render.dead_letters_html([]), css_template=render.QUEUE_CSS, elem_id="dead-letters-view"
                )
                with gr.Row():
                    dead_letter_pick = gr.Dropdown(label="Dead letter", choices=[], elem_id="dead-letter-pick", scale=4)
                    requeue_btn = gr.Button("Requeue", variant="primary", elem_id="requeue-button", scale=1)
                    requeue_all_btn = gr.Button("Requeue all", elem_id="requeue-all-button", scale=1)
                requeue_result = gr.Markdown(elem_id="requeue-result")
                dead_letter_detail = gr.HTML(
                    render.dead_letter_detail_html(None), css_template=render.QUEUE_CSS, elem_id="dead-letter-detail"
                )
                gr.Markdown("### Recent alerts")
                alerts_view = gr.HTML(render.alerts_html([]), css_template=render.QUEUE_CSS, elem_id="alerts-view")
                gr.Markdown("### Operator actions (an admin sees everyone's; others their own)")
                actions_view = gr.HTML(render.actions_html([]), css_template=render.QUEUE_CSS, elem_id="actions-view")
            with gr.Tab("Cache", id=CACHE_TAB, elem_id="cache-tab") as cache_tab:
                refresh_cache_btn = gr.Button("Refresh", elem_id="refresh-cache")
                gr.Markdown("### Entries by layer, tenant and route")
                cache_stats_view = gr.HTML(
                    render.cache_stats_html([]), css_template=render.QUEUE_CSS, elem_id="cache-stats-view"
                )
                gr.Markdown("### Recently used answers")
                cache_entries_view = gr.HTML(
                    render.cache_entries_html([]), css_template=render.QUEUE_CSS, elem_id="cache-entries-view"
                )
                with gr.Row():
                    cache_tenant = gr.Textbox(label="Tenant", elem_id="cache-tenant", scale=2)
                    cache_entry = gr.Textbox(label="Entry id", elem_id="cache-entry", scale=1)
                    invalidate_btn = gr.Button("Invalidate", variant="stop", elem_id="cache-invalidate", scale=1)
                invalidate_result = gr.Markdown(elem_id="cache-invalidate-result")
            with gr.Tab("Ops", id=OPS_TAB, elem_id="ops-tab") as ops_tab:
                with gr.Row():
                    ops_window = gr.Dropdown(
                        label="Window", choices=OPS_WINDOWS, value=DEFAULT_WINDOW_S, elem_id="ops-window", scale=2
                    )
                    ops_group = gr.Radio(
                        label="Plot per", choices=list(OPS_GROUPS), value="route", elem_id="ops-group", scale=2
                    )
                    refresh_ops_btn = gr.Button("Refresh", elem_id="refresh-ops", scale=1)
                ops_period = gr.Markdown(elem_id="ops-period")
                with gr.Row():
                    latency_plot = _ops_plot(
                        gr.ScatterPlot, "ops-latency", "Latency p50 / p95", y="seconds", color="line"
                    )
                    errors_plot = _ops_plot(gr.ScatterPlot, "ops-errors", "Error rate", y="error rate %")
                with gr.Row():
                    cost_plot = _ops_plot(gr.BarPlot, "ops-cost", "Cost", y="cost USD")
                    tokens_plot = _ops_plot(gr.BarPlot, "ops-tokens", "Tokens", y="tokens")
                with gr.Row():
                    cache_plot = _ops_plot(gr.ScatterPlot, "ops-cache", "Cache hit rate", y="cache hit rate %")
                    dlq_plot = _ops_plot(gr.BarPlot, "ops-dlq", "Dead letters", y="dead letters", color=None)
                gr.Markdown("### Per route")
                ops_routes_view = gr.HTML(
                    render.ops_figures_html([], "Route"), css_template=render.OPS_CSS, elem_id="ops-by-route"
                )
                gr.Markdown("### Per release")
                ops_releases_view = gr.HTML(
                    render.ops_figures_html([], "Release"), css_template=render.OPS_CSS, elem_id="ops-by-release"
                )
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Circuit breakers now")
                        ops_breakers_view = gr.HTML(
                            render.breaker_states_html({}, []), css_template=render.OPS_CSS, elem_id="ops-breakers"
                        )
                    with gr.Column():
                        gr.Markdown("### Escalations waiting")
                        ops_escalations_view = gr.HTML(css_template=render.OPS_CSS, elem_id="ops-escalations")
                gr.Markdown("### Budgets closest to their caps")
                ops_budgets_view = gr.HTML(
                    render.budget_lines_html([]), css_template=render.OPS_CSS, elem_id="ops-budgets"
                )
                gr.Markdown("### Recent alerts")
                ops_alerts_view = gr.HTML(render.alerts_html([]), css_template=render.QUEUE_CSS, elem_id="ops-alerts")

            with gr.Tab("Canary", id=CANARY_TAB, elem_id="canary-tab") as canary_tab:
                with gr.Row():
                    canary_release = gr.Dropdown(
                        label="Release",
                        choices=sorted(settings.releases),
                        allow_custom_value=True,
                        elem_id="canary-release",
                        scale=2,
                    )
                    canary_start_btn = gr.Button("Start rollout", variant="primary", elem_id="canary-start", scale=1)
                    canary_promote_btn = gr.Button("Promote a step", elem_id="canary-promote", scale=1)
                    refresh_canary_btn = gr.Button("Refresh", elem_id="refresh-canary", scale=1)
                with gr.Row():
                    canary_reason = gr.Textbox(label="Rollback reason", elem_id="canary-reason", scale=4)
                    canary_rollback_btn = gr.Button("Roll back", variant="stop", elem_id="canary-rollback", scale=1)
                canary_result = gr.Markdown(elem_id="canary-result")
                canary_status = gr.HTML(
                    canary_html({"stable": "…", "rollout": None}), css_template=CANARY_CSS, elem_id="canary-view"
                )
            with gr.Tab("Team", id=TEAM_TAB, elem_id="team-tab"):
                gr.Markdown(
                    "Research, writer and reviewer agents work on one shared ticket (compare-and-swap writes; "
                    "each member run opens in Traces)."
                )
                with gr.Row():
                    team_ticket = gr.Textbox(label="Ticket", placeholder="T-1", elem_id="team-ticket", scale=1)
                    team_request = gr.Textbox(label="Request", elem_id="team-request", scale=4)
                    team_btn = gr.Button("Run team", variant="primary", elem_id="team-run", scale=1)
                team_view = gr.HTML(render.team_html(None, [], ""), css_template=render.QUEUE_CSS, elem_id="team-view")

        team_btn.click(run_team_on, [team_ticket, team_request], team_view)
        chat_outputs = [chatbot, question_box, thread_box, last_run]
        # Gradio runs one event of a kind at a time by default: a second user's question would wait for the
        # first user's whole turn. Runs of different users are independent (a thread's lease keeps one
        # conversation to one run at a time; the embedded model takes its turns on its own lock).
        chat_inputs = [question_box, chatbot, thread_box, plan_first]
        question_box.submit(send, chat_inputs, chat_outputs, concurrency_limit=None)
        send_btn.click(send, chat_inputs, chat_outputs, concurrency_limit=None)
        thread_box.submit(open_thread, thread_box, chatbot)
        new_thread_btn.click(new_thread, None, [chatbot, thread_box, last_run])
        show_trace_btn.click(show_run, last_run, [tabs, run_box, trace_view])
        run_filters = [status_filter, route_filter, release_filter, tenant_filter]
        refresh_btn.click(run_picker, run_filters, [*run_filters, runs_list])
        traces_tab.select(run_picker, run_filters, [*run_filters, runs_list])
        for run_filter in run_filters:
            run_filter.input(recent_runs, run_filters, runs_list)
        runs_list.change(pick_run, runs_list, [run_box, trace_view])
        run_box.submit(view_run, run_box, trace_view)
        view_btn.click(view_run, run_box, trace_view)
        demo.load(on_load, None, [tabs, run_box, trace_view, *run_filters, runs_list])
        inbox_outputs = [inbox_view, inbox_pick, inbox_detail, inbox_option, answered_view]
        refresh_inbox_btn.click(inbox_views, inbox_pick, inbox_outputs)
        inbox_tab.select(inbox_views, inbox_pick, inbox_outputs)
        # Only a person's pick redraws the detail: inbox_views already draws it when it updates the dropdown.
        inbox_pick.input(pick_escalation, inbox_pick, [inbox_detail, inbox_option, inbox_answer])
        answer_btn.click(
            answer_escalation,
            [inbox_pick, inbox_option, inbox_answer, inbox_note],
            [inbox_result, inbox_answer, inbox_note, *inbox_outputs],
        )
        resilience_outputs = [breakers_view, transitions_view, budgets_view]
        refresh_breakers_btn.click(resilience_views, None, resilience_outputs)
        resilience_tab.select(resilience_views, None, resilience_outputs)
        demo.load(resilience_views, None, resilience_outputs)
        queue_outputs = [
            counts_view,
            queue_runs_view,
            attention_view,
            attention_pick,
            dead_letters_view,
            dead_letter_pick,
            dead_letter_detail,
            alerts_view,
            actions_view,
        ]
        refresh_queue_btn.click(queue_views, dead_letter_pick, queue_outputs)
        queue_tab.select(queue_views, dead_letter_pick, queue_outputs)
        demo.load(queue_views, dead_letter_pick, queue_outputs)
        # Only a person's pick redraws the detail: queue_views already draws it when it updates the dropdown.
        dead_letter_pick.input(pick_dead_letter, dead_letter_pick, dead_letter_detail)
        requeue_btn.click(requeue, dead_letter_pick, [requeue_result, *queue_outputs])
        requeue_all_btn.click(requeue_all, None, [requeue_result, *queue_outputs])
        requeue_target_btn.click(requeue_target, attention_pick, [requeue_result, *queue_outputs])
        cache_outputs = [cache_stats_view, cache_entries_view]
        refresh_cache_btn.click(cache_views, None, cache_outputs)
        cache_tab.select(cache_views, None, cache_outputs)
        invalidate_btn.click(invalidate_cache, [cache_tenant, cache_entry], [invalidate_result, *cache_outputs])
        ops_inputs = [ops_window, ops_group]
        ops_outputs = [
            ops_period,
            latency_plot,
            errors_plot,
            cost_plot,
            tokens_plot,
            cache_plot,
            dlq_plot,
            ops_routes_view,
            ops_releases_view,
            ops_breakers_view,
            ops_escalations_view,
            ops_budgets_view,
            ops_alerts_view,
        ]
        refresh_ops_btn.click(ops_views, ops_inputs, ops_outputs)
        ops_tab.select(ops_views, ops_inputs, ops_outputs)
        ops_window.input(ops_views, ops_inputs, ops_outputs)
        ops_group.input(ops_views, ops_inputs, ops_outputs)
        refresh_canary_btn.click(canary_view, None, canary_status)
        canary_tab.select(canary_view, None, canary_status)
        canary_outputs = [canary_result, canary_status]
        canary_start_btn.click(start_rollout, canary_release, canary_outputs)
        canary_promote_btn.click(promote_rollout, None, canary_outputs)
        canary_rollback_btn.click(roll_back, canary_reason, canary_outputs)
    return demo


def login_check(settings: Settings) -> Callable[[str, str], bool]:
    """The login a UI that needs one (see ``needs_login``) checks: an operator's name and token."""
    if not settings.operators.people:
        raise ConfigError(
            f"the UI on {settings.ui.host!r} needs a login (it is reachable from other machines, or [operators] "
            "local_role is empty) but [operators.people] is empty: add an operator (`firebreak operators add "
            "NAME`) or bind [ui] host to 127.0.0.1"
        )
    return lambda name, token: authenticate(settings.operators, token, via="ui", name=name) is not None


def start(settings: Settings, *, route: str | None = None, agent: AgentSlot | None = None) -> gr.Blocks:
    """Serve the UI on ``settings.ui.host:port`` in the background; ``demo.close()`` stops it and the agent.

    Pass ``agent`` to look at the UI's agent from outside (tests check its scripted model was used up).
    """
    auth = login_check(settings) if needs_login(settings) else None
    slot = agent or AgentSlot(settings)
    demo = build_ui(settings, route=route, agent=slot)
    demo.launch(
        server_name=settings.ui.host,
        server_port=settings.ui.port,
        auth=auth,
        auth_message="Log in with your operator name and token (`firebreak operators add NAME` makes one).",
        prevent_thread_lock=True,
        quiet=True,
        # Every run is already recorded in Firebreak's database; keep chat content out of browser storage.
        run_history=False,
        app_kwargs={"lifespan": slot.lifespan},
    )
    return demo


def launch(settings: Settings, *, route: str | None = None) -> None:
    """Serve the UI until interrupted."""
    demo = start(settings, route=route)
    print(f"Firebreak UI on {demo.local_url}", flush=True)
    demo.block_thread()
