"""Firebreak from Python: everything the ``firebreak`` command does, one import away.

    from firebreak import Agent, Console, load_settings, tool

Names load on first use (module ``__getattr__``), so ``import firebreak`` imports no model stack, database
driver or UI. The faces' floor: this package stands on graph, app, memory and core, never on ui, cli or evals.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The public name -> the module that defines it. Each name is the object the CLI itself uses, not a copy.
_ERRORS = (
    "BudgetExceeded", "CanaryError", "ChangeBudgetExhausted", "CircuitOpen", "ConfigError", "EntityExists",
    "EntityNotFound", "EscalationClosed", "Failure", "FirebreakError", "HandlerFailed", "IdempotencyConflict",
    "IdempotencyKeyConflict", "IdentityRequired", "InvalidToolArguments", "ModelError", "OperatorRefused",
    "PlanInvalid", "RateLimited", "RequestInProgress", "RunDeadlineExceeded", "ScriptError", "Signal", "StaleEntity",
    "StoreUnavailable", "ThreadBusy", "ToolError", "ToolFailed", "ToolTimeout", "ToolUnavailable", "UnknownTool",
)  # fmt: skip
_LAZY: dict[str, str] = {
    # running the agent
    "Agent": "graph.agent",
    "RunResult": "graph.agent",
    "Token": "graph.agent",
    "GraphBuilder": "graph.builder",
    "default_builder": "graph.builder",
    "RunStatus": "core.status",
    # configuration
    "Settings": "core.config",
    "load_settings": "core.config",
    # tools
    "tool": "app.tools.registry",
    "Tool": "app.tools.registry",
    "ToolContext": "app.tools.registry",
    "ToolRegistry": "app.tools.registry",
    # --- external tools: LangChain (app/tools/langchain_tools.py) ---
    "from_langchain": "app.tools.langchain_tools",
    # MCP servers' tools need no name here: `[mcp.servers.NAME]` makes them the agent's (app/tools/mcp_tools.py)
    # --- the operator's console: every `firebreak` command that reads or acts on the database ---
    "Console": "firebreak.console",
    "Trace": "firebreak.console",
    # --- the queue, the team and the choreography ---
    "Worker": "graph.worker",
    "TeamResult": "graph.team",
    "run_team": "graph.team",
    "resume_team": "graph.team",
    "subscribe": "graph.choreography",
    "settle": "graph.choreography",
    # --- getting a machine ready ---
    "migrate": "firebreak.machine",
    "setup": "firebreak.machine",
    "doctor": "firebreak.machine",
    "new_operator": "firebreak.machine",
    "NewOperator": "firebreak.machine",
    # Metrics are configuration (`[telemetry]`, OTEL_EXPORTER_OTLP_ENDPOINT); the LangGraph Server's graph is
    # `graph.server:graph`, named by langgraph.json.
    **dict.fromkeys(_ERRORS, "core.errors"),
}
__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # what type checkers and IDEs see; tests/test_python_api.py keeps it equal to _LAZY
    from app.tools.langchain_tools import from_langchain as from_langchain
    from app.tools.registry import Tool as Tool
    from app.tools.registry import ToolContext as ToolContext
    from app.tools.registry import ToolRegistry as ToolRegistry
    from app.tools.registry import tool as tool
    from core.config import Settings as Settings
    from core.config import load_settings as load_settings
    from core.errors import BudgetExceeded as BudgetExceeded
    from core.errors import CanaryError as CanaryError
    from core.errors import ChangeBudgetExhausted as ChangeBudgetExhausted
    from core.errors import CircuitOpen as CircuitOpen
    from core.errors import ConfigError as ConfigError
    from core.errors import EntityExists as EntityExists
    from core.errors import EntityNotFound as EntityNotFound
    from core.errors import EscalationClosed as EscalationClosed
    from core.errors import Failure as Failure
    from core.errors import FirebreakError as FirebreakError
    from core.errors import HandlerFailed as HandlerFailed
    from core.errors import IdempotencyConflict as IdempotencyConflict
    from core.errors import IdempotencyKeyConflict as IdempotencyKeyConflict
    from core.errors import IdentityRequired as IdentityRequired
    from core.errors import InvalidToolArguments as InvalidToolArguments
    from core.errors import ModelError as ModelError
    from core.errors import OperatorRefused as OperatorRefused
    from core.errors import PlanInvalid as PlanInvalid
    from core.errors import RateLimited as RateLimited
    from core.errors import RequestInProgress as RequestInProgress
    from core.errors import RunDeadlineExceeded as RunDeadlineExceeded
    from core.errors import ScriptError as ScriptError
    from core.errors import Signal as Signal
    from core.errors import StaleEntity as StaleEntity
    from core.errors import StoreUnavailable as StoreUnavailable
    from core.errors import ThreadBusy as ThreadBusy
    from core.errors import ToolError as ToolError
    from core.errors import ToolFailed as ToolFailed
    from core.errors import ToolTimeout as ToolTimeout
    from core.errors import ToolUnavailable as ToolUnavailable
    from core.errors import UnknownTool as UnknownTool
    from core.status import RunStatus as RunStatus
    from firebreak.console import Console as Console
    from firebreak.console import Trace as Trace
    from firebreak.machine import NewOperator as NewOperator
    from firebreak.machine import doctor as doctor
    from firebreak.machine import migrate as migrate
    from firebreak.machine import new_operator as new_operator
    from firebreak.machine import setup as setup
    from graph.agent import Agent as Agent
    from graph.agent import RunResult as RunResult
    from graph.agent import Token as Token
    from graph.builder import GraphBuilder as GraphBuilder
    from graph.builder import default_builder as default_builder
    from graph.choreography import settle as settle
    from graph.choreography import subscribe as subscribe
    from graph.team import TeamResult as TeamResult
    from graph.team import resume_team as resume_team
    from graph.team import run_team as run_team
    from graph.worker import Worker as Worker


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'firebreak' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
