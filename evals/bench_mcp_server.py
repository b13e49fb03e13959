"""The MCP server of ``evals/bench_mcp.py``: one read tool on the official SDK's ``MCPServer``.

``lookup`` returns a small JSON object (a product's price and stock) and the number of calls this process has
served so far, so the bench can tell that every timed call reached a server.

Run over stdio (the default) or streamable HTTP on 127.0.0.1 (``--transport http --port N``).
"""

from __future__ import annotations

import argparse
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

PRODUCTS = {
    "dock": {"name": "USB-C dock", "price": 129.0, "stock": 14},
    "cable": {"name": "USB-C cable", "price": 9.5, "stock": 230},
}


def build_server() -> MCPServer:
    """The server, counting the calls of its one tool."""
    # Quiet: the SDK logs every request at INFO, and logging is not what is measured.
    server: MCPServer = MCPServer("firebreak-bench", log_level="CRITICAL")
    served = 0

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup(sku: str) -> dict[str, Any]:
        """A product's name, price and stock, by SKU."""
        nonlocal served
        served += 1
        return {"sku": sku, **PRODUCTS[sku], "currency": "EUR", "served": served}

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.transport == "stdio":
        build_server().run("stdio")
    else:
        build_server().run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
