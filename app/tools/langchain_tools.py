"""LangChain tools as Firebreak tools: any ``BaseTool`` (``@tool``, ``StructuredTool``, a toolkit's tools).

The model sees the schema LangChain would send (``convert_to_openai_tool``); the call runs through the tool
runner like a native tool (timeout, breaker, retries, idempotency, budgets, spans); Firebreak's metadata comes
from ``[tools.external.NAME]``. A LangChain tool is a write unless configured a read: its name and description
cannot prove it has no effects, and a read escapes the op log, the read-only environment and the gate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, overload

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, BaseToolkit, StructuredTool, ToolException
from langchain_core.tools import Tool as SimpleTool
from langchain_core.tools.base import InjectedToolCallId, _is_injected_arg_type, get_all_basemodel_annotations
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError

from app.tools.registry import Tool, ToolContext, ToolKind, external_tool
from app.tools.timeouts import in_daemon_thread
from core.config import ExternalToolPolicy
from core.errors import ConfigError, InvalidToolArguments, ToolFailed

DEFAULT_KIND: ToolKind = "write"

Policies = ExternalToolPolicy | Mapping[str, ExternalToolPolicy] | None


@overload
def from_langchain(tool: BaseTool, policy: Policies = None) -> Tool: ...


@overload
def from_langchain(tool: BaseToolkit | Iterable[BaseTool], policy: Policies = None) -> list[Tool]: ...


def from_langchain(tool: BaseTool | BaseToolkit | Iterable[BaseTool], policy: Policies = None) -> Tool | list[Tool]:
    """Firebreak tools for a LangChain tool, a toolkit or a list of tools.

    ``policy`` is one :class:`~core.config.ExternalToolPolicy` for every tool given, or a mapping from tool
    name to policy (``settings.tools.external``). A tool without one is a write of cost class external_api.
    """
    if isinstance(tool, BaseTool):
        return _adapt(tool, _policy_for(tool.name, policy))
    tools = tool.get_tools() if isinstance(tool, BaseToolkit) else list(tool)
    return [_adapt(item, _policy_for(item.name, policy)) for item in tools]


def tools_in(value: object, external: Mapping[str, ExternalToolPolicy]) -> list[Tool]:
    """The Firebreak tools for a value found at the top level of a ``[tools] modules`` module (none for
    anything that is not a LangChain tool or toolkit)."""
    if isinstance(value, BaseTool | BaseToolkit):
        return from_langchain([value] if isinstance(value, BaseTool) else value, external)
    return []


def _policy_for(name: str, policy: Policies) -> ExternalToolPolicy | None:
    if isinstance(policy, Mapping):
        return policy.get(name)
    return policy


def _adapt(tool: BaseTool, policy: ExternalToolPolicy | None) -> Tool:
    _refuse_injected_arguments(tool)
    function = convert_to_openai_tool(tool)["function"]
    runs_async = _has_async_implementation(tool)

    async def call(arguments: dict[str, Any], context: ToolContext) -> Any:
        # A tool call, not bare arguments: LangChain then injects its id and reports handled errors as such.
        tool_call = {"type": "tool_call", "name": tool.name, "args": arguments, "id": context.op_id or uuid.uuid4().hex}
        config = _config_for(tool.name, context)
        try:
            if runs_async:
                outcome = await tool.ainvoke(tool_call, config)
            else:  # LangChain would use the loop's executor, whose threads a timed-out call would hold
                outcome = await in_daemon_thread(tool.invoke, {"input": tool_call, "config": config})
        except ToolException as exc:
            raise ToolFailed(f"{tool.name} failed: {exc}", tool=tool.name) from exc
        except ValidationError as exc:  # LangChain's own validation, stricter than the JSON schema can say
            raise InvalidToolArguments(
                f"invalid arguments for {tool.name}: {exc}. Fix them and call {tool.name} again.", tool=tool.name
            ) from None
        return _result(tool.name, outcome)

    return external_tool(
        tool.name,
        function.get("description", ""),
        function["parameters"],
        call,
        policy,
        default_kind=DEFAULT_KIND,
    )


def _result(name: str, outcome: Any) -> Any:
    """What the model is told: the message's content, or Firebreak's tool error when LangChain handled one
    (``handle_tool_error`` / ``handle_validation_error``) and reports it as the message's error status."""
    if not isinstance(outcome, ToolMessage):
        return outcome
    if outcome.status == "error":
        raise ToolFailed(f"{name} failed: {outcome.text}", tool=name)
    return outcome.content


def _config_for(name: str, context: ToolContext) -> RunnableConfig:
    """Who calls, for a tool that takes a ``RunnableConfig``: LangChain passes it on, Firebreak's names first."""
    return RunnableConfig(
        run_name=name,
        metadata={
            "firebreak_run_id": context.run_id,
            "firebreak_tenant_id": context.tenant_id,
            "firebreak_user_id": context.user_id,
            "firebreak_thread_id": context.thread_id,
            "firebreak_op_id": context.op_id,
        },
    )


def _refuse_injected_arguments(tool: BaseTool) -> None:
    """Arguments the application injects (state, a store, ...) have no value Firebreak could give; the
    tool call's id is the one it can (the op_id of a write)."""
    schema = tool.get_input_schema()
    injected = [
        name
        for name, annotation in get_all_basemodel_annotations(schema).items()
        if _is_injected_arg_type(annotation) and not _is_injected_arg_type(annotation, InjectedToolCallId)
    ]
    if injected:
        raise ConfigError(
            f"LangChain tool {tool.name}: injected arguments {', '.join(sorted(injected))} have no value in "
            "Firebreak (it injects only the tool call id); take what the tool needs as an ordinary argument"
        )


def _has_async_implementation(tool: BaseTool) -> bool:
    """Whether ``ainvoke`` awaits the tool's own coroutine (cancellable) rather than a thread."""
    if isinstance(tool, StructuredTool | SimpleTool):
        return tool.coroutine is not None
    return type(tool)._arun is not BaseTool._arun
