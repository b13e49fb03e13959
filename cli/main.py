"""The ``firebreak`` command line: the command groups assembled into one app, and its entry point.

Errors end with a one-line message and a non-zero exit code, never a
traceback (set ``FIREBREAK_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from cli import cache, canary, chat, escalations, evals, limits, mcp, operators, runs, setup
from core.errors import FirebreakError

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Firebreak: an agent that must not burn down prod.")
for group in (chat.commands, runs.commands, limits.commands, setup.commands, evals.commands):
    cli.add_typer(group)
cli.add_typer(runs.trace_cli, name="trace")
cli.add_typer(setup.db_cli, name="db")
cli.add_typer(operators.dlq_cli, name="dlq")
cli.add_typer(escalations.escalations_cli, name="escalations")
cli.add_typer(escalations.labels_cli, name="labels")
cli.add_typer(cache.cache_cli, name="cache")
cli.add_typer(runs.context_cli, name="context")
cli.add_typer(runs.plan_cli, name="plan")
cli.add_typer(canary.canary_cli, name="canary")
cli.add_typer(operators.operators_cli, name="operators")
cli.add_typer(mcp.mcp_cli, name="mcp")
T = TypeVar("T")


def _guarded(command: Callable[[], T]) -> T:
    try:
        return command()
    except typer.TyperException as exc:  # typer bundles its own click: usage errors arrive as these
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except FirebreakError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if os.environ.get("FIREBREAK_DEBUG"):
            raise
        # Only the first line: a database error's next lines are its SQL and parameters (prompts, user data).
        said = (str(exc).strip().splitlines() or ["no message"])[0]
        typer.echo(f"error: unexpected {type(exc).__name__}: {said} (set FIREBREAK_DEBUG=1 for details)", err=True)
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    code = _guarded(lambda: cli(standalone_mode=False))
    sys.exit(code if isinstance(code, int) else 0)
