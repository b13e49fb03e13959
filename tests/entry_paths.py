"""The doors into Firebreak, one shape for all: the guard matrix asks the same question through each.

A door takes a question, a conversation, a tenant and a user, runs it the way a person or a program
using that door would, and returns what that person was shown and how the run was recorded:

* ``python_api``: ``Agent.stream`` in this process, every token collected;
* ``cli``: ``firebreak ask`` as a real process, its stdout and stderr;
* ``queue``: ``submit`` then a real ``Worker`` until the queue is idle; the answer a client would read;
* ``ui``: the Gradio app served on a real port, its chat endpoint called over HTTP by ``gradio_client``.

None of them names a route: each run takes the configured route, as a user who did not choose a model.
Every door reads the same database, so a test can prepare it, or check it afterwards, through the stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import NOISY_MACHINE

from core.config import Settings, deep_merge, load_settings
from core.errors import FirebreakError
from graph.agent import Agent, RunResult, Token
from graph.worker import Worker, submit
from memory.queue import QueueStore
from memory.runs import RunStore

FIREBREAK = str(Path(sys.executable).parent / "firebreak")
# Every door answers on this route, which the scripted model serves: no door names it.
SCRIPTED_CHAT = {"agent": {"default_route": "chat"}, "routes": {"chat": {"models": ["scripted/demo"]}}}


@dataclass(frozen=True)
class Shown:
    """What one question through one door came to."""

    status: str  # the run's recorded status, or "refused" when the door refused the question itself
    text: str  # everything the person was shown: streamed tokens, the answer, any error line
    run_id: str | None = None


@dataclass
class Deployment:
    """One database and one configuration that every door reads (as N processes of one install would)."""

    database_url: str
    folder: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self, script: str) -> Settings:
        merged = deep_merge(deep_merge(NOISY_MACHINE, SCRIPTED_CHAT), self.overrides)
        return load_settings(database_url=self.database_url, script=script, **merged)

    def config_file(self) -> Path:
        """The overrides as a ``--config`` file, for the doors that start a process."""
        path = self.folder / "firebreak-test.toml"
        path.write_text(toml(deep_merge(deep_merge(NOISY_MACHINE, SCRIPTED_CHAT), self.overrides)), encoding="utf-8")
        return path

    def runs(self, script: str) -> RunStore:
        from app.services import prepare_database

        return RunStore(prepare_database(self.settings(script)))


@dataclass(frozen=True)
class Asking:
    """One question as a door takes it: the scripted model's replies, the words, and who asks in which thread."""

    script: str
    question: str
    thread: str | None = None
    tenant: str = "acme"
    user: str = "ada"


Door = Callable[[Deployment, Asking], Awaitable[Shown]]


async def python_api(deployment: Deployment, asked: Asking) -> Shown:
    streamed, result = "", None
    async with Agent.open(deployment.settings(asked.script)) as agent:
        try:
            async for item in agent.stream(
                asked.question, thread_id=asked.thread, tenant_id=asked.tenant, user_id=asked.user
            ):
                if isinstance(item, Token):
                    streamed += item.text
                else:
                    result = item
        except FirebreakError as exc:
            return Shown("refused", f"{streamed}{exc}")
    assert isinstance(result, RunResult)
    return Shown(result.status, _with_answer(streamed, result.answer), result.run_id)


async def cli(deployment: Deployment, asked: Asking) -> Shown:
    args = [FIREBREAK, "ask", "--config", str(deployment.config_file()), "--tenant", asked.tenant]
    args += ["--user", asked.user, *(["--thread", asked.thread] if asked.thread else []), asked.question]
    env = {**os.environ, "FIREBREAK_DATABASE_URL": deployment.database_url, "FIREBREAK_SCRIPT": asked.script}
    done = await asyncio.to_thread(
        subprocess.run, args, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    runs = deployment.runs(asked.script).recent(limit=1, thread_id=asked.thread)
    newest = runs[0] if runs and runs[0].question == asked.question.strip() else None
    text = done.stdout + done.stderr
    if newest is None:
        return Shown("refused", text)
    return Shown(newest.status, text, newest.id)


async def queue(deployment: Deployment, asked: Asking) -> Shown:
    settings = deployment.settings(asked.script)
    async with Agent.open(settings) as agent:
        store = QueueStore(agent.services.engine)
        try:
            job = submit(
                store, settings, asked.question, thread_id=asked.thread, tenant_id=asked.tenant, user_id=asked.user
            )
        except FirebreakError as exc:
            return Shown("refused", str(exc))
        await Worker(agent, store).run_until_idle()
        run = agent.services.runs.get(job.id)
        queued = store.get(job.id)
    if run is None:
        assert queued is not None
        return Shown("refused", queued.last_error or "", job.id)
    return Shown(run.status, run.answer or run.error or "", run.id)


async def ui(deployment: Deployment, asked: Asking) -> Shown:
    """The chat as the UI serves it; the UI chats as the configured identity, so the asker's tenant and user
    set it."""
    from gradio_client import Client

    from ui.app import start

    settings = deployment.settings(asked.script)
    identity = {"default_tenant": asked.tenant, "default_user": asked.user}
    settings = settings.model_copy(
        update={
            "identity": settings.identity.model_copy(update=identity),
            "ui": settings.ui.model_copy(update={"host": "127.0.0.1", "port": free_port()}),
        }
    )
    demo = start(settings)
    try:
        client = Client(demo.local_url, verbose=False)
        # The run id lives in a gr.State, which the HTTP API does not return: the run is found by its thread,
        # named here as a user who continues a conversation would.
        thread = asked.thread or str(uuid.uuid4())
        history, _, _ = await asyncio.to_thread(client.predict, asked.question, [], thread, False, api_name="/send")
    finally:
        demo.close()
    text = "\n".join(_text(message.get("content")) for message in history if message.get("role") == "assistant")
    runs = deployment.runs(asked.script).recent(limit=1, thread_id=thread)
    if not runs or runs[0].question != asked.question.strip():
        return Shown("refused", text)
    return Shown(runs[0].status, text, runs[0].id)


DOORS: dict[str, Door] = {"python_api": python_api, "cli": cli, "queue": queue, "ui": ui}


def through(door: str, deployment: Deployment, script: str, question: str, **who: str) -> Shown:
    """Ask ``question`` through ``door`` (``thread``, ``tenant`` and ``user`` may be named) and wait for it."""
    return asyncio.run(DOORS[door](deployment, Asking(script, question, **who)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_answer(streamed: str, answer: str | None) -> str:
    """What a person saw: the streamed text, then whatever of the answer the stream did not show."""
    if not streamed or not answer:
        return answer or streamed
    return answer if answer.startswith(streamed) else f"{streamed}\n{answer}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    return ""


def toml(table: dict[str, Any], prefix: str = "") -> str:
    """A nested dict of scalars and lists as TOML: enough for test configuration."""
    scalars = {key: value for key, value in table.items() if not isinstance(value, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{json.dumps(key)} = {json.dumps(value)}" for key, value in scalars.items()]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, dict):
            text += toml(value, f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key))
    return text
