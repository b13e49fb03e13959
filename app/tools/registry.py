"""Typed tools: declare with :func:`tool`, collect in a :class:`ToolRegistry`.

Arguments are a pydantic model built from the function's signature, so the
schema the model sees and the validation the call gets are the same thing.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from sqlalchemy.engine import Engine

from core.errors import ConfigError, InvalidToolArguments, UnknownTool

ToolKind = Literal["read", "write"]
CostClass = Literal["db", "web_search", "code", "llm", "external_api"]


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the run that called it. Declare a parameter of this type to get it."""

    run_id: str
    tenant_id: str
    user_id: str
    engine: Engine
    settings: Any = field(repr=False)
    op_id: str | None = None
    thread_id: str | None = None  # set for write tools: use it as the dedup key of the side effect
    agent: str = "firebreak"  # the calling run's role: who changed a shared entity
    correlation_id: str | None = None  # the team run the calling run belongs to (its own id when alone)


@dataclass(frozen=True)
class Tool:
    """A registered tool: its schema, its policy and the function that does the work."""

    name: str
    description: str
    kind: ToolKind
    cost_class: CostClass
    timeout_s: float | None
    retries: int | None  # attempts for transient failures; None uses [retries] attempts
    consumes: dict[str, float]  # blast-radius resources one call uses, besides one tool call
    cached: bool  # a read whose result may be reused for [cache.ttl_s] read_tool (same tenant and arguments)
    substitute: str | None  # a read tool a plan may use instead when this one fails (a local patch)
    # Output the agent may act on without a person: data the deployment itself owns (its own order table),
    # not text someone else wrote (web pages, emails, tickets, partner replies). See the untrusted-data rule.
    trusted_output: bool
    # Data every user of the tenant may see (a price list, a help centre); see ``tool(shared=...)``.
    shared: bool
    # A read that sends model-chosen data outside (a URL or path on someone else's server): after untrusted
    # output it is gated like a write, since the data it sends may be what an injection asked to leak.
    egress: bool
    args_model: type[BaseModel]
    fn: Callable[..., Any]
    context_param: str | None

    @property
    def has_effects(self) -> bool:
        """A write, or a read that sends data out: what the untrusted-data rule gates."""
        return self.kind == "write" or self.egress

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function spec the model sees."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    def parse_arguments(self, raw: str | dict[str, Any]) -> BaseModel:
        """Validate the model's arguments; the error tells the model exactly what to fix."""
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else {}
            except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or an integer too long to read
                problem = (
                    f"{exc.msg} at position {exc.pos}"
                    if isinstance(exc, json.JSONDecodeError)
                    else "nested too deeply"
                    if isinstance(exc, RecursionError)
                    else str(exc)
                )
                raise InvalidToolArguments(
                    f"arguments for {self.name} are not valid JSON ({problem}); "
                    f"send a JSON object matching {self.args_model.model_json_schema()['properties']}",
                    tool=self.name,
                ) from None
        if not isinstance(raw, dict):
            raise InvalidToolArguments(f"arguments for {self.name} must be a JSON object", tool=self.name)
        try:
            return self.args_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors())
            raise InvalidToolArguments(
                f"invalid arguments for {self.name}: {problems}. Fix them and call {self.name} again.",
                tool=self.name,
            ) from None

    def bind(self, arguments: BaseModel, context: ToolContext) -> dict[str, Any]:
        """Keyword arguments for ``fn``: the validated fields plus the context when asked for."""
        kwargs = arguments.model_dump()
        if self.context_param:
            kwargs[self.context_param] = context
        return kwargs


def _location(loc: tuple[int | str, ...]) -> str:
    """Where a validation error is, as the model must read it: an argument named "" is shown as ''."""
    return ".".join("''" if part == "" else str(part) for part in loc) or "(arguments)"


def tool(
    *,
    kind: ToolKind = "read",
    cost_class: CostClass = "external_api",
    timeout_s: float | None = None,
    retries: int | None = None,
    consumes: dict[str, float] | None = None,
    cached: bool = False,
    substitute: str | None = None,
    trusted_output: bool = False,
    shared: bool = False,
    egress: bool = False,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Tool]:
    """Declare a tool. Its docstring is the description; its annotated parameters are the schema.

    ``timeout_s`` overrides the budget of its ``cost_class``; ``[tools.timeouts_s]`` overrides both.
    ``retries`` is the number of attempts on transient failures (default: ``[retries] attempts``).
    ``consumes`` names the blast-radius resources a call uses (default: a write to the database is one
    ``db_mutations``); every call also counts one ``tool_calls``.
    ``cached`` marks a deterministic read: its result is reused for the same tenant and arguments for
    ``[cache.ttl_s] read_tool`` seconds (a write by that tenant drops it). Write tools are never cached.
    ``substitute`` names a read tool taking the same arguments that a plan may use when this one fails
    (the seed's cached prices for a dead pricing API): the replanner patches the step instead of replanning.
    ``trusted_output`` declares the result the deployment's own data (not written by outsiders): after an
    untrusted result, every write and egress read the run proposes goes to a person (``[gate]
    after_untrusted``, per tool ``after_untrusted_tools``).
    ``egress`` declares a read that sends model-chosen data outside (a partner's URL): it is treated as a
    write by that rule. Writes need not declare it.
    ``shared`` declares the result fit for every user of the tenant (a price list, a help centre): only
    answers built from shared results alone (or none) are cached tenant-wide; any other tool result keeps the
    answer per user. The read-tool layer keeps a tool's results per user when it takes a
    :class:`ToolContext` (it may read who asks) and is not declared shared.
    """

    def declare(fn: Callable[..., Any]) -> Tool:
        hints = get_type_hints(fn, include_extras=True)
        fields: dict[str, Any] = {}
        context_param = None
        for param in inspect.signature(fn).parameters.values():
            annotation = hints.get(param.name, Any)
            if annotation is ToolContext:
                context_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        tool_name = name or fn.__name__
        if cached and kind == "write":
            raise ConfigError(f"tool {tool_name}: write tools are never cached (cached=True needs kind='read')")
        model = create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        return Tool(
            name=tool_name,
            description=inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0] or tool_name,
            kind=kind,
            cost_class=cost_class,
            timeout_s=timeout_s,
            retries=retries,
            consumes=consumes if consumes is not None else default_consumption(kind, cost_class),
            cached=cached,
            substitute=substitute,
            trusted_output=trusted_output,
            shared=shared,
            egress=egress,
            args_model=model,
            fn=fn,
            context_param=context_param,
        )

    return declare


def default_consumption(kind: ToolKind, cost_class: CostClass) -> dict[str, float]:
    return {"db_mutations": 1.0} if kind == "write" and cost_class == "db" else {}


class ToolRegistry:
    """The tools one agent may call, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._specs: list[dict[str, Any]] | None = None
        for item in tools:
            self.add(item)

    def add(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ConfigError(f"two tools are named {item.name!r}; tool names must be unique")
        self._tools[item.name] = item
        self._specs = None

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(
                f"unknown tool {name!r}; available tools: {', '.join(sorted(self._tools)) or 'none'}", tool=name
            ) from None

    def specs(self) -> list[dict[str, Any]]:
        """The specs the model sees, built once: schema generation is too slow for every step."""
        if self._specs is None:
            self._specs = [item.spec() for item in self._tools.values()]
        return self._specs

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    @classmethod
    def from_modules(cls, modules: Iterable[str]) -> ToolRegistry:
        """Collect every :class:`Tool` defined at the top level of the named modules."""
        modules = list(modules)
        registry = cls()
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ConfigError(f"tools.modules: cannot import {module_name!r}: {exc}") from None
            for value in vars(module).values():
                if isinstance(value, Tool):
                    registry.add(value)
        for item in registry:
            if item.substitute is not None and item.substitute not in registry._tools:
                raise ConfigError(
                    f"tool {item.name}: its substitute {item.substitute!r} is not among the tools of {modules}"
                )
        return registry
