"""A small MCP tool server for tests/test_mcp_tools.py, built on the official SDK's MCPServer (FastMCP's 2.x name).

Tools: ``price`` (a read, annotated readOnlyHint), ``place_order`` (a write that appends one line per call, with the
``firebreak/op_id`` it was sent, to the ``--calls`` file: the test counts the calls that reached the server),
``wait`` (sleeps as long as asked: the slow tool) and ``broken`` (raises: the tool's own error).

Run over stdio (``--transport stdio``, the default) or streamable HTTP on 127.0.0.1 (``--transport http --port N``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

PRICES = {"dock": 129.0, "cable": 9.5}


def build_server(calls: Path) -> MCPServer:
    # Quiet: rendering the broken tool's traceback with rich takes a loaded machine longer than a tool's budget.
    server: MCPServer = MCPServer("firebreak-test-shop", log_level="CRITICAL")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def price(sku: str) -> dict[str, Any]:
        """The list price of a product, by SKU."""
        if sku not in PRICES:
            raise ValueError(f"no product {sku!r}")
        return {"sku": sku, "price": PRICES[sku], "currency": "EUR"}

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    def place_order(sku: str, quantity: int, ctx: Context) -> str:
        """Order a quantity of a product."""
        meta = ctx.request_context.meta or {}
        with calls.open("a", encoding="utf-8") as out:
            out.write(f"{sku} {quantity} {meta.get('firebreak/op_id', '-')}\n")
        count = len(calls.read_text(encoding="utf-8").splitlines())
        return f"order {count} placed: {quantity} x {sku}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def wait(seconds: float) -> str:
        """Wait, then say how long."""
        await asyncio.sleep(seconds)
        return f"waited {seconds}s"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def broken() -> str:
        """Always fails."""
        raise RuntimeError("the warehouse database is corrupt")

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--calls", type=Path, required=True)
    args = parser.parse_args()
    server = build_server(args.calls)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
