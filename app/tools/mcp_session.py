"""One MCP server's session, held for the agent's lifetime (see ``app/tools/mcp_tools.py`` for why).

The SDK's client lives in anyio task groups, which must be left by the task that entered them: the UI opens its
agent in one request's task and closes it in the server's lifespan. So each session is entered, held and left by a
task of its own; calls from any task of the same event loop go through it. A session whose transport broke (a
killed stdio process, an HTTP server gone) is dropped, and the next call connects again (a stdio server is started
again). That connection goes on when the call that started it times out (``connect_timeout_s`` bounds it), so a
server slower to start than one call may wait still comes back for a later call; a server that stays dead fails
every call, fast, until its breakers open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, RequestParamsMeta
from mcp_types import Tool as McpTool

from core.config import McpServerSettings
from core.errors import ToolFailed, ToolTimeout, ToolUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_LIST_PAGES = 100  # a server whose tools/list never ends cannot hang the agent's start


@dataclass
class _Held:
    """A connected client, the tools it listed, and the task that holds it open until ``stop`` is set."""

    client: Client
    tools: list[McpTool]
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done() and not self.stop.is_set()


@dataclass
class McpSession:
    """The session to one configured server: connect, list its tools, call them, close."""

    name: str
    server: McpServerSettings
    _held: _Held | None = None
    _connecting: asyncio.Task[_Held] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _closed: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # every task it started, for close to wait on

    @property
    def target(self) -> str:
        """The server as a person would name it: its URL or its command."""
        return self.server.url or " ".join(self.server.command)

    async def start(self) -> list[McpTool]:
        """Connect (within ``connect_timeout_s``) and list the server's tools; raises what went wrong."""
        self._loop = asyncio.get_running_loop()
        return (await self._attempt()).tools

    async def call(self, tool: str, name: str, arguments: dict[str, Any], meta: RequestParamsMeta | None) -> Any:
        """Call the server's tool ``name`` for the Firebreak tool ``tool``; transport trouble is ToolUnavailable
        (a breaker failure), the server refusing the request is ToolFailed."""
        if asyncio.get_running_loop() is not self._loop:
            raise ToolFailed(
                f"{tool}: the session to MCP server {self.name} belongs to another event loop; "
                "open the agent in the loop that runs it",
                tool=tool,
            )
        held = await self._session(tool)
        try:
            return await held.client.call_tool(name, arguments, meta=meta)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolTimeout(f"{tool}: MCP server {self.name} timed out: {exc}", tool=tool) from exc
            if exc.code != CONNECTION_CLOSED:
                raise ToolFailed(f"{tool}: MCP server {self.name} refused the call: {exc}", tool=tool) from exc
            held.stop.set()
            raise ToolUnavailable(f"{tool}: MCP server {self.name} closed the connection", tool=tool) from exc
        except Exception as exc:  # the SDK's transport errors (pipes, HTTP): the server is not there any more
            held.stop.set()
            raise ToolUnavailable(f"{tool}: MCP server {self.name} is unreachable: {describe(exc)}", tool=tool) from exc

    async def close(self) -> None:
        """Leave the session (a stdio server is stopped); later calls fail as unavailable."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._held is not None:
            self._held.stop.set()
        self._held = None
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _session(self, tool: str) -> _Held:
        """The live session, connecting again when the last one broke."""
        if self._held is not None and self._held.alive:
            return self._held
        if self._closed:
            raise ToolUnavailable(f"{tool}: the session to MCP server {self.name} is closed", tool=tool)
        try:
            # Shielded: a call's timeout leaves the connection going for the next call, since a stdio server may
            # take longer to start than one call may wait. connect_timeout_s bounds it.
            return await asyncio.shield(self._attempt())
        except Exception as exc:
            raise ToolUnavailable(f"{tool}: MCP server {self.name} is unreachable: {describe(exc)}", tool=tool) from exc

    def _attempt(self) -> asyncio.Task[_Held]:
        """The connection under way, or a new one when none is (the broken session, if any, is let go)."""
        if self._connecting is None or self._connecting.done():
            if self._held is not None:
                self._held.stop.set()  # its task ends on its own: the transport's shutdown is bounded
                self._held = None
            self._connecting = self._track(asyncio.create_task(self._connect(), name=f"mcp-connect-{self.name}"))
        return self._connecting

    async def _connect(self) -> _Held:
        """Start the task that holds a new session; wait until it has listed the tools or failed."""
        ready: asyncio.Future[_Held] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = self._track(asyncio.create_task(self._hold(ready, stop), name=f"mcp-session-{self.name}"))
        try:
            held = await asyncio.wait_for(asyncio.shield(ready), self.server.connect_timeout_s)
        except TimeoutError:
            task.cancel()
            raise TimeoutError(f"no answer within connect_timeout_s = {self.server.connect_timeout_s:g}") from None
        except BaseException:
            task.cancel()
            raise
        held.task = task
        self._held = held
        if self._closed:  # closed while it connected
            stop.set()
        return held

    async def _hold(self, ready: asyncio.Future[_Held], stop: asyncio.Event) -> None:
        """Enter the client, list its tools, hand both over, and stay until told to stop (or the transport ends)."""
        try:
            async with Client(self._transport(), cache=None) as client:
                tools = await _list_tools(client)
                if not ready.done():
                    ready.set_result(_Held(client, tools, stop))
                await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("MCP server %s: the session ended: %s", self.name, describe(exc))
        finally:
            stop.set()
            if not ready.done():
                ready.cancel()

    def _transport(self) -> StdioServerParameters | str:
        if self.server.url:
            return self.server.url
        command, *args = self.server.command
        return StdioServerParameters(command=command, args=args, env=self.server.env or None)

    def _track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(_settled(self._tasks))
        return task


def _settled(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def forget(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a connection no call waited for any more failed: its caller was told, or gone

    return forget


async def _list_tools(client: Client) -> list[McpTool]:
    tools: list[McpTool] = []
    cursor = None
    for _ in range(MAX_LIST_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def describe(exc: BaseException) -> str:
    """An error as one line, looking inside the exception groups anyio raises."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


def result_output(tool: str, result: CallToolResult) -> Any:
    """What the model reads: the result's text as the server wrote it, its structured content when it wrote none;
    an error result is a ToolFailed (the model reads why; the breaker does not count the tool's own error)."""
    text = "\n".join(_block_text(block) for block in result.content)
    if result.is_error:
        raise ToolFailed(f"{tool} failed: {text or 'the server gave no reason'}", tool=tool)
    return text if text or result.structured_content is None else result.structured_content


def _block_text(block: Any) -> str:
    """One content block as text; what is not text is named, never inlined (base64 would flood the context)."""
    kind = getattr(block, "type", "content")
    if kind == "text":
        return str(block.text)
    if kind == "resource":
        inner = block.resource
        return str(getattr(inner, "text", None) or f"[resource {inner.uri}]")
    if kind == "resource_link":
        return f"[resource link {block.uri}]"
    return f"[{kind}: {getattr(block, 'mime_type', None) or 'binary'}]"
