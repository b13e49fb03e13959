"""Typed tools: declare with :func:`tool`, collect in a :class:`ToolRegistry`.

Arguments are a pydantic model built from the function's signature, so the
schema the model sees and the validation the call gets are the same thing.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.engine import Engine

from app.tools.docstrings import argument_docs, summary
from core.config import ExternalToolPolicy
from core.errors import ConfigError, InvalidToolArguments, UnknownTool
from core.user_modules import import_user_module

ToolKind = Literal["read", "write"]
CostClass = Literal["db", "web_search", "code", "llm", "external_api"]
# The spec key that carries a tool's examples: Firebreak's own, read by the embedded model's prompt and removed by
# the gateway before a call to any other model (a provider refuses keys it does not know).
EXAMPLES_KEY = "x-firebreak-examples"


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
    # The circuit breaker its calls count against; None: its own, ``tool:NAME``. Tools of one MCP server share
    # the server's (``mcp:SERVER``): when the server dies, one breaker opens for all of them.
    breaker: str | None = None
    # Questions a user would ask this tool for. The embedded model's prompt shows them as few-shot examples of
    # choosing it (a 0.5B model matches questions, not descriptions); remote models never see them.
    examples: tuple[str, ...] = ()

    @property
    def breaker_backend(self) -> str:
        return self.breaker or f"tool:{self.name}"

    @property
    def has_effects(self) -> bool:
        """A write, or a read that sends data out: what the untrusted-data rule gates."""
        return self.kind == "write" or self.egress

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def argument_names(self) -> list[str]:
        """What the model may pass, from the schema it sees (a tool that brings its own has no model fields)."""
        return list(self.args_model.model_json_schema().get("properties", {}))

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function spec the model sees."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        function: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": schema}
        if self.examples:
            function[EXAMPLES_KEY] = list(self.examples)
        return {"type": "function", "function": function}

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
                    f"send a JSON object matching {self.args_model.model_json_schema().get('properties', {})}",
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
        # The validated values themselves: a pydantic model, dataclass or enum argument arrives as one, not as
        # the dict model_dump would make of it. A tool bringing its own JSON schema validates into a dict.
        kwargs = (
            dict(arguments.root)
            if isinstance(arguments, RootModel)
            else {field: getattr(arguments, field) for field in type(arguments).model_fields}
        )
        if self.context_param:
            kwargs[self.context_param] = context
        return kwargs


def _location(loc: tuple[int | str, ...]) -> str:
    """Where a validation error is, as the model must read it: an argument named "" is shown as ''."""
    return ".".join("''" if part == "" else str(part) for part in loc) or "(arguments)"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    fn: None = None,
    /,
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
    examples: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
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
    examples: Iterable[str] = (),
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Declare a tool, as ``@tool`` or ``@tool(kind=...)``. Its docstring is the description; its annotated
    parameters are the schema.

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
    ``examples`` are questions a user would ask this tool for ("Has order 7 shipped?"): the embedded model
    learns from them when to choose it, where it would otherwise match the question against descriptions.
    """

    def declare(fn: Callable[..., Any]) -> Tool:
        tool_name = name or getattr(fn, "__name__", None)
        if not tool_name:  # a functools.partial or a callable object has no name of its own
            raise ConfigError(f"tool {fn!r} has no __name__: declare it with tool(name=...)")
        if cached and kind == "write":
            raise ConfigError(f"tool {tool_name}: write tools are never cached (cached=True needs kind='read')")
        fields, context_param = _signature_fields(tool_name, fn)
        with warnings.catch_warnings():
            # A parameter named like a BaseModel method ("json", "schema") is fine: bind reads fields, not methods.
            warnings.filterwarnings("ignore", message=".*shadows an attribute in parent", category=UserWarning)
            model = create_model(  # type: ignore[call-overload]
                f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
            )
        return Tool(
            name=tool_name,
            description=summary(_doc(fn)) or tool_name,
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
            examples=tuple(examples),
        )

    return declare if fn is None else declare(fn)


def _signature_fields(tool_name: str, fn: Callable[..., Any]) -> tuple[dict[str, Any], str | None]:
    """The arguments model's fields, from the signature and the docstring, and the ToolContext parameter."""
    described = argument_docs(_doc(fn))
    fields: dict[str, Any] = {}
    context_param = None
    # eval_str resolves `from __future__ import annotations`; signature also reads a partial or a callable object.
    for param in inspect.signature(fn, eval_str=True).parameters.values():
        if param.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            raise ConfigError(
                f"tool {tool_name}: parameter {param.replace(annotation=inspect.Parameter.empty)} cannot be an "
                "argument the model names; "
                "declare each argument as a named parameter"
            )
        if param.name in _RESERVED_FIELDS:
            raise ConfigError(f"tool {tool_name}: a parameter cannot be named {param.name!r} (pydantic reserves it)")
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        if annotation is ToolContext:
            context_param = param.name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        description = described.get(param.name)
        if description and not isinstance(default, FieldInfo) and not _describes_itself(annotation):
            default = Field(default, description=description)
        fields[param.name] = (annotation, default)
    return fields, context_param


def _doc(fn: Callable[..., Any]) -> str | None:
    """The docstring of the function a tool calls: a partial's own is functools' documentation of partial."""
    return (fn.func if isinstance(fn, functools.partial) else fn).__doc__


_RESERVED_FIELDS = frozenset({"model_config", "model_fields", "model_computed_fields"})


def _describes_itself(annotation: Any) -> bool:
    """Whether ``Annotated[..., Field(description=...)]`` already says what the argument is."""
    return any(isinstance(extra, FieldInfo) and extra.description for extra in getattr(annotation, "__metadata__", ()))


def default_consumption(kind: ToolKind, cost_class: CostClass) -> dict[str, float]:
    return {"db_mutations": 1.0} if kind == "write" and cost_class == "db" else {}


ExternalCall = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
# The keyword ``Tool.bind`` hands the context under; no JSON schema property is refused by this name.
_CONTEXT_KEY = "__firebreak_context__"


def external_tool(
    name: str,
    description: str,
    schema: dict[str, Any],
    call: ExternalCall,
    policy: ExternalToolPolicy | None,
    *,
    default_kind: ToolKind,
    breaker: str | None = None,
) -> Tool:
    """A :class:`Tool` for a callable that brings its own JSON schema (a LangChain tool, an MCP tool).

    The model sees ``schema`` as given; arguments are validated against it before ``call(arguments,
    context)`` runs inside the tool runner like any native tool. Firebreak's metadata comes from
    ``policy`` (``[tools.external.NAME]``); its kind, when the policy names none, is ``default_kind``.
    """
    policy = policy or ExternalToolPolicy()
    kind: ToolKind = policy.kind or default_kind
    if policy.cached and kind == "write":
        raise ConfigError(f"tools.external.{name}: write tools are never cached (cached = true needs kind = 'read')")
    if _CONTEXT_KEY in schema.get("properties", {}):
        raise ConfigError(f"tool {name}: its schema has a property named {_CONTEXT_KEY!r}, which Firebreak reserves")

    async def fn(**kwargs: Any) -> Any:
        context = kwargs.pop(_CONTEXT_KEY)
        return await call(kwargs, context)

    return Tool(
        name=name,
        description=description,
        kind=kind,
        cost_class=policy.cost_class,
        timeout_s=policy.timeout_s,
        retries=policy.retries,
        consumes=default_consumption(kind, policy.cost_class),
        cached=policy.cached,
        substitute=policy.substitute,
        trusted_output=policy.trusted_output,
        shared=policy.shared,
        egress=policy.egress,
        args_model=schema_model(name, schema),
        fn=fn,
        # The call receives the context (it may pass who asks on), so a cached read is kept per user
        # unless the policy declares it shared: the rule native tools that take a ToolContext follow.
        context_param=_CONTEXT_KEY,
        breaker=breaker,
        examples=tuple(policy.examples),
    )


def schema_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """An arguments model whose JSON schema is ``schema`` exactly and which validates against it."""
    from jsonschema import validators  # only tools that bring a JSON schema pay for the import

    try:
        checker = validators.validator_for(schema)(schema)
        checker.check_schema(schema)
    except Exception as exc:  # jsonschema's SchemaError, or a schema that is not even a mapping
        raise ConfigError(f"tool {name}: its argument schema is not a valid JSON schema: {exc}") from None
    given = copy.deepcopy(schema)

    class Arguments(RootModel[dict[str, Any]]):
        @model_validator(mode="after")
        def _matches_schema(self) -> Arguments:
            # A set: jsonschema reports each missing property of a "required" as its own error.
            problems = {problem for error in checker.iter_errors(self.root) for problem in _schema_problems(error)}
            if problems:
                raise ValidationError.from_exception_data(
                    f"{name}_arguments", [_as_pydantic(*problem) for problem in sorted(problems)]
                )
            return self

        @classmethod
        def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
            return copy.deepcopy(given)

    Arguments.__name__ = f"{name}_arguments"
    return Arguments


Problem = tuple[tuple[str, ...], str]  # where (the path of the offending value), what


def _schema_problems(error: Any) -> list[Problem]:
    """One jsonschema error as the model must read it, worded as a native tool's would be where they agree."""
    path = tuple(str(part) for part in error.absolute_path)
    if error.validator == "required":
        return [((*path, key), "Field required") for key in error.validator_value if key not in error.instance]
    if (
        error.validator == "additionalProperties"
        and error.validator_value is False
        and "patternProperties" not in error.schema
    ):
        allowed = set(error.schema.get("properties", {}))
        return [((*path, key), "Extra inputs are not permitted") for key in error.instance if key not in allowed]
    return [(path, error.message)]


def _as_pydantic(loc: tuple[str, ...], message: str) -> InitErrorDetails:
    # The message as a value, not the template: jsonschema's messages quote inputs, braces and all.
    return InitErrorDetails(
        type=PydanticCustomError("json_schema", "{message}", {"message": message}), loc=loc, input=None
    )


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
    def from_modules(
        cls, modules: Iterable[str], external: Mapping[str, ExternalToolPolicy] | None = None
    ) -> ToolRegistry:
        """Collect every :class:`Tool` defined at the top level of the named modules, and every LangChain
        tool and toolkit there, each with its ``external`` policy (``[tools.external]``, by tool name)."""
        modules = list(modules)
        registry = cls()
        for module_name in modules:
            module = import_user_module(module_name, setting="tools.modules")
            for value in vars(module).values():
                if isinstance(value, Tool):
                    registry.add(value)
                # A LangChain tool's module has imported langchain_core.tools (LangGraph does not): the others
                # never pay for the adapter.
                elif "langchain_core.tools" in sys.modules:
                    from app.tools.langchain_tools import tools_in

                    for item in tools_in(value, external or {}):
                        registry.add(item)
        for item in registry:
            if item.substitute is not None and item.substitute not in registry._tools:
                raise ConfigError(
                    f"tool {item.name}: its substitute {item.substitute!r} is not among the tools of {modules}"
                )
        return registry
