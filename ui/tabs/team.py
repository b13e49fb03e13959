"""The Team tab: research, writer and reviewer agents work on one shared ticket; each member run links to its
trace, and the ticket's versions show who changed what."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import gradio as gr

from core.errors import FirebreakError
from graph.agent import Agent
from graph.team import TeamResult, resume_team, run_team
from memory.shared_state import EntityStore
from memory.tables import EntityEvent
from ui.html import QUESTION_PREFIX_CHARS, QUEUE_CSS, empty_html, run_link, shorten, table, td, text_td, tr
from ui.page import Page
from ui.tabs.traces import entity_changes_html

TEAM_TAB = "team"
WAITING = "waiting"  # a team result's status while a member's run waits for a person
STOPPED = "stopped"  # ... and once a member's run ended without an answer


def _verdict(result: TeamResult) -> str:
    if result.status == WAITING:
        # A member's write waits for a reviewer: say who and where to answer, never show it as finished.
        waits = "; ".join(
            f"{escape(item['role'])} waits for a reviewer: escalation {escape(item['id'][:8])} "
            f"({escape(item['question'])})"
            for item in result.waiting_for
        )
        return (
            f'<div class="team-verdict" data-verdict="waiting">Ticket {escape(result.ticket)}: {waits}. '
            "Answer it in the Inbox, then press Resume team "
            f"(or: firebreak team --resume {escape(result.correlation_id)})</div>"
        )
    if result.status == STOPPED and result.stopped_by is not None:
        member = result.stopped_by
        again = " Resume team tries it again." if member["resumable"] else ""
        ended = f"{escape(member['role'])} run ended {escape(member['status'])} ({escape(result.why_stopped())})"
        return (
            f'<div class="team-verdict" data-verdict="stopped">Ticket {escape(result.ticket)}: stopped, the '
            f"{ended}.{again}</div>"
        )
    return (
        f'<div class="team-verdict" data-verdict="{escape(result.verdict)}">Ticket {escape(result.ticket)}: '
        f"{escape(result.verdict)} after {result.rounds} round(s)</div>"
    )


def team_html(result: TeamResult | None, changes: Sequence[EntityEvent], message: str) -> str:
    """A team run: each member run (role, link to its trace, status, answer), the verdict, the ticket's versions."""
    if result is None:
        return empty_html(message or "Run the team on a ticket to see its members and the versions they wrote.")
    rows = [
        tr(
            "member",
            {"role": member["role"], "status": member["status"]},
            [
                text_td(member["role"]),
                td(run_link(member["run_id"], short=True), "mono"),
                text_td(member["status"]),
                text_td(shorten(member["answer"] or "", QUESTION_PREFIX_CHARS)),
            ],
        )
        for member in result.runs
    ]
    members = table("team-members", ["Agent", "Run", "Status", "Answer"], rows, "")
    return _verdict(result) + members + entity_changes_html(changes)


@dataclass(frozen=True)
class TeamHandlers:
    """The Team tab's one event: a team run in the operator's (first) tenant, on the page's pinned route."""

    page: Page

    async def run_team_on(self, ticket: str, ask: str, request: gr.Request) -> tuple[str, str]:
        """Run the research → writer → reviewer team on a ticket; show its runs and the ticket's new versions,
        and put the team run's id in the resume box (for a team that waits or stopped)."""
        ticket, ask = ticket.strip(), ask.strip()
        if not ticket or not ask:
            return team_html(None, [], "Name a ticket and say what the team should do."), ""
        operator = self.page.operator(request)
        agent = await self.page.slot.get()
        try:
            result = await run_team(
                agent,
                ask,
                ticket=ticket,
                route=self.page.route,
                tenant_id=self.page.chat_tenant(operator),
            )
        except FirebreakError as exc:
            return team_html(None, [], str(exc)), ""
        return self._shown(agent, result)

    async def resume_team_on(self, correlation: str, request: gr.Request) -> tuple[str, str]:
        """Go on with a team run that waited (its escalations answered in the Inbox) or stopped on a failure."""
        correlation = correlation.strip()
        if not correlation:
            return team_html(None, [], "Name the team run to resume (its id is shown when it waits or stops)."), ""
        operator = self.page.operator(request)
        agent = await self.page.slot.get()
        try:
            result = await resume_team(agent, correlation, tenant_id=self.page.chat_tenant(operator))
        except FirebreakError as exc:
            return team_html(None, [], str(exc)), correlation
        return self._shown(agent, result)

    @staticmethod
    def _shown(agent: Agent, result: TeamResult) -> tuple[str, str]:
        changes = EntityStore(agent.services.engine).changes_in(result.correlation_id)
        return team_html(result, changes, ""), result.correlation_id


def team_tab(page: Page) -> None:
    """Lay out the Team tab and wire its event."""
    handlers = TeamHandlers(page)
    with gr.Tab("Team", id=TEAM_TAB, elem_id="team-tab"):
        gr.Markdown(
            "Research, writer and reviewer agents work on one shared ticket (compare-and-swap writes; "
            "each member run opens in Traces)."
        )
        with gr.Row():
            ticket = gr.Textbox(label="Ticket", placeholder="T-1", elem_id="team-ticket", scale=1)
            ask = gr.Textbox(label="Request", elem_id="team-request", scale=4)
            run_btn = gr.Button("Run team", variant="primary", elem_id="team-run", scale=1)
        with gr.Row():
            correlation = gr.Textbox(label="Team run", elem_id="team-correlation", scale=5)
            resume_btn = gr.Button("Resume team", elem_id="team-resume", scale=1)
        view = gr.HTML(team_html(None, [], ""), css_template=QUEUE_CSS, elem_id="team-view")
    run_btn.click(handlers.run_team_on, [ticket, ask], [view, correlation])
    resume_btn.click(handlers.resume_team_on, [correlation], [view, correlation])
