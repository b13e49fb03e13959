"""The MCP server behind ``firebreak mcp serve``: one read-only tool per operator view, and operator auth.

Built on the official SDK's MCPServer (FastMCP's 2.x name) and imported only by that command: no other command
needs the SDK. Every tool reads through app.views or app.operator_views, as the CLI does, as the operator who
called it (the view checks what they may see). The tools are plain functions: the SDK runs them in a worker
thread, so one slow database read does not stall the other sessions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import AnyHttpUrl, Field

from app.operator_views import breakers_view, budgets_view, escalations_waiting_view, trace_view
from app.operators import Operator, authenticate, configured
from app.services import Stores
from app.views import attention_of, runs_of
from core.config import Settings
from core.errors import FirebreakError, OperatorRefused

VIA = "mcp"
INSTRUCTIONS = (
    "Read-only views of a Firebreak deployment: runs, a run's span tree, circuit breakers, budget use against "
    "the caps, escalations waiting for a person and the runs that need an operator. Nothing here changes anything."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Who makes a tool call (the views then check what they may see).
Reader = Callable[[], Operator]
Limit = Annotated[int, Field(ge=1, le=500, description="At most this many rows.")]
Text = Annotated[str | None, Field(description="Only rows with this value; leave out for any.")]


def stdio_reader(operator: Operator) -> Reader:
    """Every call reads as the operator who started the server (already checked to be someone)."""
    return lambda: operator


def http_reader(settings: Settings) -> Reader:
    """Every call reads as the configured operator whose bearer token its HTTP request carried."""

    def reader() -> Operator:
        token = get_access_token()  # the SDK's bearer middleware set it for this request
        if token is None:  # it lets no request through without one: never reached
            raise OperatorRefused("this request carries no operator token")
        return configured(settings.operators, token.client_id, via=VIA)

    return reader


class OperatorTokens:
    """The SDK's token verifier: a bearer token is valid when it is an operator's token in [operators.people]."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def verify_token(self, token: str) -> AccessToken | None:
        operator = authenticate(self.settings.operators, token, via=VIA)
        return None if operator is None else AccessToken(token=token, client_id=operator.name, scopes=[])


def build_server(stores: Stores, reader: Reader, *, http: bool, host: str, port: int) -> MCPServer:
    """The MCP server over ``stores``; with ``http``, behind operator bearer tokens at http://HOST:PORT/mcp."""
    auth: dict[str, Any] = {}
    if http:
        here = AnyHttpUrl(f"http://{host}:{port}")
        # Operators' tokens are not issued for a resource by an authorization server: the verifier is the check.
        settings = AuthSettings(issuer_url=here, resource_server_url=here, validate_token_resource=False)
        auth = {"token_verifier": OperatorTokens(stores.settings), "auth": settings}
    server = MCPServer("firebreak", instructions=INSTRUCTIONS, **auth)
    register_views(server, stores, reader)
    return server


def shown(view: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``view`` returns, as JSON types (timestamps as text, as ``--json`` prints them); a refusal or a
    missing row is the tool's one-line error, as the CLI's (any other error's text stays on the server)."""
    try:
        data = view()
    except FirebreakError as exc:
        raise ToolError(str(exc)) from None
    shaped: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return shaped


def register_views(server: MCPServer, stores: Stores, reader: Reader) -> None:
    """One read-only tool per view, each read as the operator who calls it."""

    @server.tool(annotations=READ_ONLY)
    def runs(
        status: Text = None, route: Text = None, release: Text = None, tenant: Text = None, limit: Limit = 20
    ) -> dict[str, Any]:
        """The newest runs (answered, failed, waiting, ...), filtered by status, route, release and tenant."""
        which = {"status": status, "route": route, "release": release, "tenant": tenant}
        return shown(lambda: {"runs": [run.model_dump() for run in runs_of(stores, reader(), **which, limit=limit)]})

    @server.tool(annotations=READ_ONLY)
    def trace(run_id: Annotated[str, Field(description="The run's id, as `runs` lists it.")]) -> dict[str, Any]:
        """A run's spans as a tree with durations: model calls, tool calls, their tokens, costs and errors."""
        return shown(lambda: trace_view(stores, reader(), run_id))

    @server.tool(annotations=READ_ONLY)
    def breakers() -> dict[str, Any]:
        """Every circuit breaker: state, trips, when an open one probes again; and the latest transitions."""
        return shown(lambda: breakers_view(stores, reader(), now=time.time()))

    @server.tool(annotations=READ_ONLY)
    def budgets(
        scope: Annotated[str, Field(description="Only scopes starting so, such as day:acme or session:t-1.")] = "",
    ) -> dict[str, Any]:
        """Usage against the blast-radius caps (tokens, cost, tool calls, ...) per request, session and tenant day."""
        return shown(lambda: {"budgets": budgets_view(stores, reader(), scope)})

    @server.tool(annotations=READ_ONLY)
    def escalations_waiting(limit: Limit = 100) -> dict[str, Any]:
        """Open escalations waiting for a person, oldest first: why, the question, how long each has waited."""
        return shown(lambda: {"escalations": escalations_waiting_view(stores, reader(), now=time.time(), limit=limit)})

    @server.tool(annotations=READ_ONLY)
    def dead_letters(limit: Limit = 100) -> dict[str, Any]:
        """Runs and event handlings that did not end with a clean answer (the DLQ), each with what to do about it."""

        def view() -> dict[str, Any]:
            items = attention_of(stores, reader(), None, now=time.time(), limit=limit)
            return {"items": [item.as_dict() for item in items]}

        return shown(view)
