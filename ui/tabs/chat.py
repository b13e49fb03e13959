"""The Chat tab: a streaming chat with threads; a run that waits for a person says so here, and an earlier
thread reopens with its questions, escalations and answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from app.cache.semantic import hit_note
from core.errors import FirebreakError
from core.status import RunStatus
from graph.agent import Agent, RunResult, Token
from memory.tables import Escalation, Run
from ui.html import FAILED_STATUSES, run_line
from ui.page import Page

CHAT_TAB = "chat"
THREAD_ESCALATIONS = 500
THREAD_HISTORY_RUNS = 100
HANDOFF_TYPES = frozenset({"full_handoff", "immediate_transfer"})
Messages = list[dict[str, Any]]


def cache_line(hit: Mapping[str, Any]) -> str:
    """Why an answer came from the cache, and what it saved (the same words as the CLI)."""
    return f"<sub>{escape(hit_note(hit))}</sub>"


def answer_message(answer: str | None, status: str, error: str | None, line: str) -> str:
    """The assistant's final message: the answer, or a readable failure, then the run line.

    A handed-off run's answer is the reply of the person who took over, and says so.
    """
    if status in FAILED_STATUSES:
        reason = error or "no answer was produced"
        body = f"**The run {status.replace('_', ' ')}:** {reason}"
    elif status == RunStatus.HANDED_OFF:
        body = f"**A person replied:** {answer or '_(no reply)_'}"
    else:
        body = answer or "_(no answer)_"
    return f"{body}\n\n{line}"


def error_message(error: Exception) -> str:
    """A refused question (empty, too long, bad route, a thread that waits for an answer): no stack trace."""
    return f"**Could not run this question:** {error}"


def _reply_options(options: Sequence[str]) -> str:
    words = [f"**{option}**" for option in options] or ["**yes**", "**no**"]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def waiting_message(rows: Sequence[Escalation]) -> str:
    """What a waiting run asks, as the assistant's message: the user's own question, or who it waits for.

    ``rows`` are the open escalations the run waits for. A confirmation (audience ``user``) is the
    question and "Reply yes or no"; anything else waits for a reviewer, whose reply comes back here.
    """
    parts = []
    for row in rows:
        if row.audience == "user":
            parts.append(f"**Waiting for your answer:** {row.question}\n\nReply {_reply_options(row.options)}.")
        else:
            parts.append(
                f"**Waiting for a reviewer** ({row.type}, {row.reason}) — the reply will appear here.\n\n"
                f"> {' '.join(row.question.split())}"
            )
    return "\n\n".join(parts) or "**Waiting for a person** — the reply will appear here."


def _message(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


def _closed_exchange(row: Escalation) -> list[dict[str, Any]]:
    """A closed escalation in a reopened thread: what was asked and what came back."""
    if row.status == "expired":
        answer = f" (taken as **{row.answer}**)" if row.answer else ""
        return [_message("assistant", f"{row.question}\n\n— nobody answered in time{answer}.")]
    if row.type in HANDOFF_TYPES:
        return []  # the person's reply is the run's answer, shown after this
    if row.audience == "user":
        return [_message("assistant", row.question), _message("user", row.answer or "")]
    note = f" — note: {row.note}" if row.note else ""
    return [
        _message("assistant", f"{row.question}\n\n— a reviewer ({row.answered_by}) answered **{row.answer}**{note}")
    ]


def run_messages(run: Run, escalations: Sequence[Escalation] = ()) -> list[dict[str, Any]]:
    """A stored run as the chatbot shows it: the question, each answered escalation, then the answer.

    ``escalations`` are the run's; a waiting run ends with what it waits for instead of an answer.
    """
    line = run_line(run.id, run.status, run.input_tokens, run.output_tokens, run.cost_usd)
    ordered = sorted(escalations, key=lambda row: row.created_at)
    messages = [_message("user", run.question)]
    messages += [message for row in ordered if row.status != "open" for message in _closed_exchange(row)]
    if run.status == RunStatus.WAITING:
        waiting = [row for row in ordered if row.status == "open" and row.pauses_run]
        messages.append(_message("assistant", f"{waiting_message(waiting)}\n\n{line}"))
    else:
        messages.append(_message("assistant", answer_message(run.answer, run.status, run.error, line)))
    return messages


def _assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _waiting_for(agent: Agent, result: RunResult) -> list[Escalation]:
    """The rows a waiting run waits for (the result names them; the rows carry the reasons)."""
    rows = (agent.services.escalations.get(item["id"]) for item in result.escalations)
    return [row for row in rows if row is not None]


def _result_message(agent: Agent, result: RunResult) -> str:
    """The assistant's message for a finished (or paused) run, with its run line."""
    usage = result.usage
    line = run_line(result.run_id, result.status, usage.input_tokens, usage.output_tokens, usage.cost_usd)
    if result.cache:
        line = f"{cache_line(result.cache)}\n{line}"
    if result.status == RunStatus.WAITING:
        return f"{waiting_message(_waiting_for(agent, result))}\n\n{line}"
    return answer_message(result.answer, result.status, result.error, line)


@dataclass(frozen=True)
class ChatHandlers:
    """The Chat tab's events (their names are the page's API names: ``/send`` streams a run)."""

    page: Page

    async def send(
        self, question: str, history: Messages, thread_id: str, plan_first: bool, request: gr.Request
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Stream one run into the chat: the growing answer, then the answer with its run line."""
        thread_id = thread_id.strip() or str(uuid.uuid4())
        # An empty question gets no bubble of its own, only the message saying why it was refused.
        asked = [{"role": "user", "content": question}] if question.strip() else []
        history = [*history, *asked, _assistant("…")]
        yield history, "", thread_id, gr.skip()
        answer = ""
        try:
            agent = await self.page.slot.get()
            # A logged-in operator chats as themselves, in their (first) tenant; the local person as the
            # configured identity (see [identity] and [operators] in firebreak.toml).
            operator, identity = self.page.operator(request), self.page.settings.identity
            async for item in agent.stream(
                question,
                thread_id=thread_id,
                route=self.page.route,
                tenant_id=self.page.chat_tenant(operator),
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
            history[-1] = _assistant(error_message(exc))
            yield history, gr.skip(), gr.skip(), gr.skip()

    async def open_thread(self, thread_id: str, request: gr.Request) -> Messages:
        """Show an earlier thread's questions, escalations and answers so the user can continue it."""
        thread_id = thread_id.strip()
        if not thread_id:
            return []
        services = await self.page.services()
        operator = self.page.reader(request)
        runs = [
            run
            for run in services.runs.recent(limit=THREAD_HISTORY_RUNS, thread_id=thread_id)
            if operator.sees(run.tenant_id)
        ]
        by_run: dict[str, list[Escalation]] = {}
        for row in services.escalations.list(status=None, thread_id=thread_id, limit=THREAD_ESCALATIONS):
            by_run.setdefault(row.run_id, []).append(row)
        return [message for run in reversed(runs) for message in run_messages(run, by_run.get(run.id, []))]

    def new_thread(self) -> tuple[Messages, str, str]:
        return [], str(uuid.uuid4()), ""


@dataclass(frozen=True)
class ChatTab:
    """What other tabs wire to: the last run's id and the button that opens its trace."""

    last_run: gr.State
    show_trace: gr.Button


def chat_tab(page: Page, last_run: gr.State) -> ChatTab:
    """Lay out the Chat tab and wire its events; ``last_run`` holds the id of the chat's latest run."""
    handlers = ChatHandlers(page)
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
                value=page.settings.planner.enabled,
                info="The model writes a plan; failed steps are patched or replanned (see Traces).",
                elem_id="plan-first",
                scale=1,
            )
        chatbot = gr.Chatbot(label=f"Firebreak · route {page.route or 'by release'}", elem_id="chat", height=480)
        with gr.Row():
            question_box = gr.Textbox(
                show_label=False, placeholder="Ask a question…", elem_id="question", scale=6, lines=1
            )
            send_btn = gr.Button("Send", variant="primary", elem_id="send", scale=1)
            show_trace_btn = gr.Button("Show trace", elem_id="show-trace", scale=1)
    chat_outputs = [chatbot, question_box, thread_box, last_run]
    # Gradio runs one event of a kind at a time by default: a second user's question would wait for the
    # first user's whole turn. Runs of different users are independent (a thread's lease keeps one
    # conversation to one run at a time; the embedded model takes its turns on its own lock).
    chat_inputs = [question_box, chatbot, thread_box, plan_first]
    question_box.submit(handlers.send, chat_inputs, chat_outputs, concurrency_limit=None)
    send_btn.click(handlers.send, chat_inputs, chat_outputs, concurrency_limit=None)
    thread_box.submit(handlers.open_thread, thread_box, chatbot)
    new_thread_btn.click(handlers.new_thread, None, [chatbot, thread_box, last_run])
    return ChatTab(last_run, show_trace_btn)
