"""MCP tool servers as Firebreak tools: each tool of each ``[mcp.servers.NAME]`` becomes a :class:`Tool`.

Its calls go through the tool runner like a native tool's (timeout, breaker, retries, idempotency, budgets, the
untrusted-data rule, spans). Its name is ``NAME__tool`` (OpenAI's alphabet, at most 64 characters), so two servers
never collide, and its ``execute_tool`` span carries ``firebreak.mcp.server`` and ``firebreak.mcp.tool``.

Its policy comes from ``[tools.external."NAME__tool"]``. Unlisted, it is a write (an MCP server may do anything),
unless the server is ``trusted`` and the tool's annotations say ``readOnlyHint``: annotations are the server's own
claim, worth something only for a server you run. A write is sent once per call (no blind in-call retry: the
request may have reached the server before the connection broke) unless the policy sets ``retries``, and it carries
its op_id in the request's ``_meta`` (``firebreak/op_id``) so a server may dedup a retried operation too. Its
output is untrusted unless the policy says ``trusted_output``.

Lifecycle: servers are connected when the agent opens (``attach_mcp_servers``, from ``Agent.create``), all at once,
each within its ``connect_timeout_s``, and their sessions are held until the agent closes: the tool list the model
sees is fixed for the agent's life, and a call pays no connection set-up (a stdio server is one child process per
agent, not per call). A server that cannot be reached then is left out, with a warning and a ``mcp_unreachable``
alert, and the agent opens without its tools: one optional backend down must not stop every run, and tools
whose schemas were never seen cannot be offered. A server that dies later fails its calls (ToolUnavailable, a
breaker failure) until its breakers open; each call first tries to connect again (``app/tools/mcp_session.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_types import Tool as McpTool
from opentelemetry import trace

from app.tools.mcp_session import McpSession, describe, result_output
from app.tools.registry import Tool, ToolContext, ToolKind, ToolRegistry, external_tool, schema_model
from core.config import ExternalToolPolicy, McpServerSettings, Settings
from core.errors import ConfigError

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger(__name__)
MAX_NAME = 64  # OpenAI's limit on a function name
SEPARATOR = "__"
OP_ID_META = "firebreak/op_id"
SERVER_ATTRIBUTE = "firebreak.mcp.server"
TOOL_ATTRIBUTE = "firebreak.mcp.tool"
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")
AlertHook = Callable[[str, str, dict[str, Any]], None]  # app.services' alerter: kind, message, payload


def tool_name(server: str, tool: str) -> str:
    """The name the agent sees: ``server__tool`` in ``[a-zA-Z0-9_-]``; a long one is cut and keeps a digest of the
    whole, so two long names that share a beginning still differ."""
    name = _NOT_ALLOWED.sub("_", f"{server}{SEPARATOR}{tool}")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{server}{SEPARATOR}{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1]}_{digest}"


def default_kind(server: McpServerSettings, tool: McpTool) -> ToolKind:
    """A write, unless a trusted server annotates the tool read-only."""
    read_only = tool.annotations is not None and tool.annotations.read_only_hint is True
    return "read" if server.trusted and read_only else "write"


def mcp_tool(session: McpSession, tool: McpTool, server: McpServerSettings, policy: ExternalToolPolicy | None) -> Tool:
    """One MCP tool as a Firebreak tool that calls it through ``session``."""
    name = tool_name(session.name, tool.name)
    policy = policy or ExternalToolPolicy()
    kind = policy.kind or default_kind(server, tool)
    if kind == "write" and policy.retries is None:
        # Sent once: a write whose connection broke may have reached the server, and resending it is no retry.
        policy = policy.model_copy(update={"retries": 1})

    async def call(arguments: dict[str, Any], context: ToolContext) -> Any:
        trace.get_current_span().set_attributes({SERVER_ATTRIBUTE: session.name, TOOL_ATTRIBUTE: tool.name})
        meta: Any = {OP_ID_META: context.op_id} if kind == "write" and context.op_id else None
        return result_output(name, await session.call(name, tool.name, arguments, meta))

    description = tool.description or tool.title or tool.name
    return external_tool(
        name, description, tool.input_schema, call, policy, default_kind=kind, breaker=f"mcp:{session.name}"
    )


@dataclass
class McpTools:
    """The configured servers' sessions and tools; ``unreachable`` names the servers (and any single tool whose
    schema was refused) that were left out, and why."""

    sessions: list[McpSession] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def extend(self, registry: ToolRegistry) -> ToolRegistry:
        """A registry with ``registry``'s tools and these (a name clash is a ConfigError)."""
        return ToolRegistry([*registry, *self.tools])

    async def aclose(self) -> None:
        await asyncio.gather(*(session.close() for session in self.sessions))


async def connect_servers(settings: Settings, alert: AlertHook | None = None) -> McpTools:
    """Connect every ``[mcp.servers]`` server at once and build its tools; see the module's docstring."""
    sessions = [McpSession(name, server) for name, server in settings.mcp.servers.items()]
    try:
        listed = await asyncio.gather(*(session.start() for session in sessions), return_exceptions=True)
        found = McpTools()
        for session, tools in zip(sessions, listed, strict=True):
            if isinstance(tools, BaseException):
                if not isinstance(tools, Exception):
                    raise tools  # a cancellation or an interrupt is not the server's failure
                _left_out(session, describe(tools), found, alert)
                await session.close()
                continue
            found.sessions.append(session)
            found.tools.extend(tools_of(session, tools, settings, found))
        return found
    except BaseException:
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
        raise


def _left_out(session: McpSession, why: str, found: McpTools, alert: AlertHook | None) -> None:
    found.unreachable[session.name] = why
    message = f"MCP server {session.name} ({session.target}) is unreachable, its tools are left out: {why}"
    log.warning("%s", message)
    if alert is not None:
        alert("mcp_unreachable", message, {"server": session.name, "target": session.target, "error": why})


def tools_of(session: McpSession, listed: list[McpTool], settings: Settings, found: McpTools) -> list[Tool]:
    """The Firebreak tools for a server's listed tools; one whose schema is refused is noted in ``found``."""
    tools = []
    for tool in listed:
        name = tool_name(session.name, tool.name)
        try:
            schema_model(name, tool.input_schema)
        except ConfigError as exc:  # the server's mistake must not stop the agent: that tool alone is left out
            log.warning("MCP server %s: tool %s is left out: %s", session.name, tool.name, exc)
            found.unreachable[name] = str(exc)
            continue
        # A mistake in [tools.external] (a cached write) is the deployment's own: it fails loudly.
        tools.append(mcp_tool(session, tool, session.server, settings.tools.external.get(name)))
    return tools


async def attach_mcp_servers(services: Services, stack: AsyncExitStack) -> McpTools:
    """Give ``services``' registries the configured servers' tools; ``stack`` closes the sessions."""
    found = await connect_servers(services.settings, services.alert)
    stack.push_async_callback(found.aclose)
    services.tools = found.extend(services.tools)
    services.team_tools = found.extend(services.team_tools)
    return found
