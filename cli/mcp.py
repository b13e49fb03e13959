"""``firebreak mcp serve``: Firebreak's own read-only operator views as an MCP server (cli/mcp_server.py builds it).

Who reads is an operator, as for every other face ([operators], docs/decisions/0034):
- stdio (default): the server is a child of the client, started by the person at this machine, so it reads as
  the operator any command would: the owner of FIREBREAK_OPERATOR_TOKEN, else the local person with
  ``local_role``. Checked once, at start: a wrong token, or none when ``local_role`` is empty, ends it before
  it serves. No ``--token`` option: a command line is visible to every user in ``ps``.
- streamable HTTP (``--http``): every request carries ``Authorization: Bearer <operator token>``, checked
  against [operators.people]; a missing or unknown token is a 401 before any tool runs. There is no local
  person here: every process on the machine can reach a port, so a server with nobody configured refuses to
  start.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.access import reader_of
from cli.options import ConfigOption, settings_of
from core.errors import FirebreakError

mcp_cli = typer.Typer(no_args_is_help=True, help="Serve Firebreak's read-only operator views to MCP clients.")


@mcp_cli.command("serve")
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option("--host", help="With --http: the address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="With --http: the port.")] = 8765,
    config: ConfigOption = None,
) -> None:
    """Serve runs, traces, breakers, budgets, escalations waiting and dead letters as read-only MCP tools
    (stdio by default; --http: streamable HTTP at http://HOST:PORT/mcp, each request with an operator's
    bearer token)."""
    from app.services import open_stores
    from cli.mcp_server import build_server, http_reader, stdio_reader

    settings = settings_of(config)
    if http and not settings.operators.people:
        raise FirebreakError(
            "serving MCP over HTTP needs an operator with a token: add one with `firebreak operators add`"
        )
    reader = http_reader(settings) if http else stdio_reader(reader_of(settings))
    server = build_server(open_stores(settings), reader, http=http, host=host, port=port)
    if http:
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("stdio")
