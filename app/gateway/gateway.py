"""The gateway: the only door between Firebreak and any model.

Each model named in the routes is one deployment: its LiteLLM parameters are
resolved once, then every call goes straight to ``litellm.acompletion`` (LiteLLM's
``Router`` doubled the cost of a call and added cooldowns of its own; see
docs/decisions/0045-hot-path-costs.md). The gateway walks a route's models in order itself (primary, then fallbacks on
transient errors) so that every attempt gets its own span, audit row and fault
draw; see docs/decisions/0003-gateway-walks-fallbacks.md.

LiteLLM takes seconds to import, so the gateway imports it (``app.gateway.lazy``)
when it first needs it (a call, a token count, a model's price or window), never
when it is built: commands that make no model call never load it. The embedded
model runs in this process and is called directly, so a run on it never loads
LiteLLM at all (docs/decisions/0052-in-process-model-without-litellm.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from app.faults import FaultPlan
from app.gateway.calls import (
    CallContext,
    ChatRequest,
    ModelReply,
    Prices,
    TokenSink,
    ToolCall,
    Usage,
    estimate_prompt_tokens,
    local_reply,
    usage_of,
)
from app.gateway.lazy import load_litellm
from app.gateway.local_prompt import PROVIDER as LOCAL
from app.gateway.provider_params import missing_provider_keys, openai_tools, provider_of, takes_seed
from app.gateway.script import PROVIDER as SCRIPTED
from app.gateway.script import Script
from app.limits.ledger import BlastRadius, Scope
from app.resilience.retry import Guard
from app.telemetry import Telemetry, mark_error
from core.config import RouteSettings, Settings, TaskClass
from core.errors import CircuitOpen, ConfigError, ModelError, ScriptError
from memory.tables import ModelCall

if TYPE_CHECKING:
    from app.gateway.local_model import LocalModel


class Gateway:
    """Routes chat calls to deployments and accounts for every one of them."""

    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        record_call: Callable[[ModelCall], None],
        guard: Guard,
        limits: BlastRadius,
        faults: FaultPlan | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.limits = limits
        self.telemetry = telemetry
        self._record_call = record_call
        self._faults = faults or FaultPlan(settings.faults)
        self._deployments: dict[str, dict[str, Any]] = {}  # model → its LiteLLM parameters
        self._takes_seed: dict[str, bool] = {}  # model → whether it is called with its route's seed
        self._price_cache: dict[str, Prices] = {}
        self._script: Script | None = None
        self._local: LocalModel | None = None
        self._prices_registered = False
        self._registering = threading.Lock()

    def _litellm(self) -> ModuleType:
        """LiteLLM, with this gateway's configured prices registered before its first use."""
        lib = load_litellm()
        if not self._prices_registered:
            with self._registering:
                if not self._prices_registered:
                    for model, prices in self.settings.models.items():
                        self._register_price(model, prices.input_cost_per_token, prices.output_cost_per_token)
                    self._prices_registered = True
        return lib

    # -- deployments -------------------------------------------------------------------------------

    @property
    def script(self) -> Script | None:
        """The loaded script, once a scripted model has been used."""
        return self._script

    def _register_price(self, model: str, input_cost: float, output_cost: float) -> None:
        load_litellm().register_model(
            {
                model: {
                    "input_cost_per_token": input_cost,
                    "output_cost_per_token": output_cost,
                    "litellm_provider": provider_of(model),
                    "mode": "chat",
                }
            }
        )

    def _deployment_params(self, model: str) -> dict[str, Any]:
        if provider_of(model) == SCRIPTED:
            from app.gateway.scripted import register_scripted_provider, script_handle

            if self._script is None:
                if not self.settings.script:
                    raise ConfigError(f"model {model} needs a script: set FIREBREAK_SCRIPT=path/to/script.jsonl")
                self._script = Script.load(self.settings.script)
                register_scripted_provider()
            if model not in self.settings.models:
                self._register_price(model, 0.0, 0.0)
            return {"model": model, "api_base": script_handle(self._script)}
        return {"model": model}

    def _deployment(self, model: str) -> dict[str, Any]:
        """The model's LiteLLM parameters, resolved (provider registered, script loaded) on first use."""
        if model not in self._deployments:
            if provider_of(model) != LOCAL:
                self._litellm()
            self._deployments[model] = self._deployment_params(model)
            self._takes_seed[model] = takes_seed(model)
        return self._deployments[model]

    def _seed(self, settings: RouteSettings, model: str) -> int | None:
        """The seed ``model`` is called with: the route's, if the model takes one."""
        return settings.seed if self._takes_seed[model] else None

    def _local_model(self) -> LocalModel:
        """The embedded model, called in this process without LiteLLM; its weights load on its first call."""
        if self._local is None:
            from app.gateway.local_model import LocalModel

            self._local = LocalModel(self.settings.local_model)
        return self._local

    def prepare(self, route: str) -> None:
        """Resolve every deployment of ``route`` now, so a configuration mistake surfaces before a run starts."""
        for model in self.settings.route(route).models:
            self._deployment(model)

    def warm(self, route: str) -> None:
        """Load the route's primary model now if it runs in this process (the embedded model); else nothing."""
        if provider_of(self.settings.route(route).models[0]) == LOCAL:
            self._local_model().load()

    def count_tokens(self, messages: list[dict[str, Any]], *, route: str, tools: list[dict[str, Any]] | None) -> int:
        """Tokens of this prompt for the route's primary model: its own tokenizer where LiteLLM has it
        (OpenAI's cl100k otherwise); the scripted model's own estimate for scripted models."""
        model = self.settings.route(route).models[0]
        if provider_of(model) == SCRIPTED:
            from app.gateway.scripted import estimate_tokens, prompt_text

            return estimate_tokens(prompt_text(messages))
        if provider_of(model) == LOCAL:
            return self._local_model().prompt_tokens(messages, tools)
        return int(self._litellm().token_counter(model=model, messages=messages, tools=tools))

    def context_window(self, route: str) -> int | None:
        """The smallest context window among the route's models (a fallback must fit the prompt too)."""
        windows = [self._window(model) for model in self.settings.route(route).models]
        known = [window for window in windows if window is not None]
        return min(known) if known else None

    def _window(self, model: str) -> int | None:
        if model in self.settings.models:
            return self.settings.models[model].context_window
        if provider_of(model) == LOCAL:
            return self.settings.local_model.context_window
        window = self._model_info(model).get("max_input_tokens")
        return int(window) if window else None

    def _model_info(self, model: str) -> dict[str, Any]:
        """What LiteLLM knows of a model (prices, window); empty for a model it does not know."""
        lib = self._litellm()
        try:
            return dict(lib.get_model_info(model))
        except Exception:  # LiteLLM raises a bare Exception for models it does not know
            return {}

    def verify_script_consumed(self) -> None:
        """Raise :class:`ScriptError` if a scripted model left replies unused or was misused."""
        if self._script is not None:
            self._script.verify_consumed()

    # -- calls -------------------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        route: str,
        context: CallContext,
        task: TaskClass = "answer",
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        on_token: TokenSink | None = None,
        deadline: float | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ModelReply:
        """Ask the route's models in order: each through its breaker, transient errors retried, then the next.

        ``route`` is the run's; ``task`` may send the call to another one (``[routing]``).
        ``deadline`` (a ``time.monotonic()`` value) bounds every attempt and every backoff;
        ``max_output_tokens`` lowers the route's (a short answer reserves a small budget); ``temperature``
        overrides the route's (a score should be greedy, so the same action gets the same grade).
        ``tool_choice`` names one of ``tools`` that the model must call: its schema constrains the output.
        """
        route = self.settings.routing.route_for(task, route)
        settings = self.settings.route(route)
        if max_output_tokens is not None:
            settings = settings.model_copy(
                update={"max_output_tokens": min(max_output_tokens, settings.max_output_tokens)}
            )
        if temperature is not None:
            settings = settings.model_copy(update={"temperature": temperature})
        request = ChatRequest(route, settings, messages, tools, context, on_token, task, tool_choice)
        last_error: ModelError | None = None
        fallback_reason: str | None = None
        for position, model in enumerate(request.settings.models):
            try:
                return await self.guard.call(
                    f"model:{model}",
                    self._attempt_for(request, model, position, fallback_reason, deadline),
                    is_transient=lambda exc: isinstance(exc, ModelError) and exc.transient,
                    slow_after_s=request.settings.timeout_s / 2,
                    deadline=deadline,
                )
            except CircuitOpen as exc:
                trace.get_current_span().add_event(
                    "firebreak.breaker.rejected", {"firebreak.backend": exc.backend, "firebreak.model": model}
                )
                last_error = ModelError(str(exc), kind="circuit_open", transient=True, model=model)
            except ModelError as error:
                # A credential problem is the provider's, not the request's: the next model may have its own. A bad
                # request (400) would fail everywhere, so it ends the route.
                if not error.transient and error.kind != "auth":
                    raise
                last_error = error
            fallback_reason = f"{last_error.kind} on {model}"
        assert last_error is not None
        raise last_error

    def _attempt_for(
        self, request: ChatRequest, model: str, position: int, fallback_reason: str | None, deadline: float | None
    ) -> Callable[[], Awaitable[ModelReply]]:
        def attempt() -> Awaitable[ModelReply]:
            timeout_s = request.settings.timeout_s
            if deadline is not None:
                timeout_s = max(min(timeout_s, deadline - time.monotonic()), 0.001)
            return self._attempt(request, model, position, fallback_reason, timeout_s)

        return attempt

    async def _attempt(
        self, request: ChatRequest, model: str, position: int, fallback_reason: str | None, timeout_s: float
    ) -> ModelReply:
        route, route_settings, context = request.route, request.settings, request.context
        deployment = self._deployment(model)
        prices = self._prices(model)
        # The worst case is held before the call: a call that could cross a cap is never made.
        worst_input = estimate_prompt_tokens(request.messages, request.tools)
        reservation = self.limits.reserve(
            Scope(context.run_id, context.thread_id, context.tenant_id, context.user_id),
            {
                "requests": 1,
                "tokens": worst_input + route_settings.max_output_tokens,
                "cost_usd": prices.cost(worst_input, route_settings.max_output_tokens),
            },
        )
        tracer = self.telemetry.tracer
        with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider_of(model),
                    "gen_ai.request.model": model,
                    "gen_ai.request.max_tokens": route_settings.max_output_tokens,
                    "gen_ai.request.temperature": route_settings.temperature,
                    "firebreak.route": route,
                    "firebreak.task_class": request.task,
                    "firebreak.fallback_position": position,
                    "firebreak.tenant_id": context.tenant_id,
                }
            )
            if (seed := self._seed(route_settings, model)) is not None:
                span.set_attribute("gen_ai.request.seed", seed)
            if fallback_reason is not None:
                span.set_attribute("firebreak.fallback_reason", fallback_reason)
                span.add_event("firebreak.fallback", {"firebreak.route": route, "firebreak.reason": fallback_reason})
            self.telemetry.content(span, "gen_ai.input.messages", request.messages)
            started = time.perf_counter()
            try:
                reply = await asyncio.wait_for(
                    self._call(deployment, model, request),
                    timeout=timeout_s,
                )
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                self.limits.settle(reservation, {"requests": 1})  # a failed call still reached the provider
                error = self._model_error(exc, model, timeout_s)
                mark_error(span, error)
                self._audit(request, model, position, started, Usage(), status="error", error_kind=error.kind)
                raise error from None
            if not prices.known:
                # Unpriced usage is charged at the configured worst-case price (in _reply), and flagged.
                span.set_attribute("firebreak.cost_unpriced", True)
            self.limits.settle(
                reservation,
                {
                    "requests": 1,
                    "tokens": reply.usage.input_tokens + reply.usage.output_tokens,
                    "cost_usd": reply.usage.cost_usd,
                },
            )
            span.set_attributes(
                {
                    "gen_ai.response.model": reply.model,
                    "gen_ai.usage.input_tokens": reply.usage.input_tokens,
                    "gen_ai.usage.output_tokens": reply.usage.output_tokens,
                    "firebreak.usage.cached_input_tokens": reply.usage.cached_input_tokens,
                    "firebreak.usage.reasoning_tokens": reply.usage.reasoning_tokens,
                    "firebreak.cost_usd": reply.usage.cost_usd,
                    "gen_ai.response.finish_reasons": ["tool_calls" if reply.tool_calls else "stop"],
                }
            )
            self.telemetry.content(
                span,
                "gen_ai.output.messages",
                {"text": reply.text, "tool_calls": [call.__dict__ for call in reply.tool_calls]},
            )
            self._audit(request, model, position, started, reply.usage, status="ok", error_kind=None)
            return reply

    def _prices(self, model: str) -> Prices:
        """The model's price, looked up once: every attempt needs it to reserve and settle its budget."""
        if model not in self._price_cache:
            self._price_cache[model] = self._lookup_prices(model)
        return self._price_cache[model]

    def _lookup_prices(self, model: str) -> Prices:
        """``[models]`` first (the same prices the gateway registers with LiteLLM), then the embedded model's zero,
        then LiteLLM's price map, else the configured worst case."""
        configured = self.settings.models.get(model)
        if configured is not None:
            return Prices(
                configured.input_cost_per_token,
                configured.output_cost_per_token,
                known=True,
                cached_input_per_token=configured.cached_input_cost_per_token,
            )
        if provider_of(model) == LOCAL:
            return Prices(0.0, 0.0, known=True)  # the embedded model costs nothing per token
        info = self._model_info(model)
        pin, pout = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if pin is None or pout is None:
            limits = self.settings.limits
            return Prices(limits.unpriced_input_cost_per_token, limits.unpriced_output_cost_per_token, known=False)
        return Prices(
            float(pin), float(pout), known=True, cached_input_per_token=info.get("cache_read_input_token_cost")
        )

    def _model_error(self, exc: BaseException, model: str, timeout_s: float) -> ModelError:
        # A broken script is the test's verdict, not an outage: never let a fallback hide it.
        if isinstance(exc, ScriptError):
            raise exc
        if self._script is not None and self._script.failure is not None:
            raise self._script.failure
        if isinstance(exc, TimeoutError):
            return ModelError(f"{model}: no answer within {timeout_s:g}s", kind="timeout", transient=True, model=model)
        if isinstance(exc, ModelError):
            return exc
        from app.gateway.provider_errors import model_error

        error = model_error(exc, model)
        # OpenAI's SDK reports a missing key as a server error (LiteLLM's 500): it would be retried and counted
        # against the breaker as an outage. Where the provider's keys are missing, that is what the error says.
        if (
            provider_of(model) not in (LOCAL, SCRIPTED)  # no keys; and asking LiteLLM would import it for nothing
            and error.kind not in ("timeout", "connection", "rate_limit")
            and (missing := missing_provider_keys(model))
        ):
            needs = f"{model} needs {', '.join(missing)} in the environment"
            return ModelError(
                f"{needs} (firebreak doctor checks every route)", kind="auth", transient=False, model=model
            )
        return error

    async def _call(self, deployment: dict[str, Any], model: str, request: ChatRequest) -> ModelReply:
        fault = self._faults.draw(model)
        if fault is not None:
            await fault.delay()
            if fault.error_kind is not None:
                from app.gateway.provider_errors import provider_exception

                raise provider_exception(fault.error_kind, f"injected {fault.error_kind} fault", model)
        arguments: dict[str, Any] = {
            **deployment,
            "messages": request.messages,
            "max_tokens": request.settings.max_output_tokens,
            "temperature": request.settings.temperature,
        }
        if (seed := self._seed(request.settings, model)) is not None:
            arguments["seed"] = seed
        if request.tools:
            arguments["tools"] = request.tools if provider_of(model) == LOCAL else openai_tools(request.tools)
        if request.tool_choice is not None:
            arguments["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
        if provider_of(model) == LOCAL:
            outcome = await self._local_model().complete(model, arguments, request.on_token)
            return local_reply(outcome, self._prices(model), model, request.route)
        if request.on_token is None:
            response = await load_litellm().acompletion(**arguments)
        else:
            stream = await load_litellm().acompletion(**arguments, stream=True, stream_options={"include_usage": True})
            chunks = []
            async for chunk in stream:
                chunks.append(chunk)
                delta = chunk.choices[0].delta if chunk.choices else None
                if delta is not None and delta.content:
                    request.on_token(delta.content)
            response = load_litellm().stream_chunk_builder(chunks, messages=request.messages)
        return self._reply(response, model, request.route)

    def _reply(self, response: Any, model: str, route: str) -> ModelReply:
        message = response.choices[0].message
        calls = tuple(
            ToolCall(
                id=call.id or f"call_{index}", name=call.function.name or "", arguments=call.function.arguments or ""
            )
            for index, call in enumerate(message.tool_calls or [])
        )
        input_tokens, output_tokens, cached, reasoning = usage_of(response)
        # Priced here from the token classes, not by litellm.completion_cost: one formula for every provider,
        # and unpriced models at the configured worst case (see _attempt), never at zero.
        cost = self._prices(model).cost(input_tokens, output_tokens, cached)
        return ModelReply(
            text=message.content or "",
            tool_calls=calls,
            usage=Usage(input_tokens, output_tokens, cost, cached, reasoning),
            model=model,
            route=route,
        )

    def _audit(
        self,
        request: ChatRequest,
        model: str,
        position: int,
        started: float,
        usage: Usage,
        *,
        status: str,
        error_kind: str | None,
    ) -> None:
        """The call's audit row: its routing decision (task, route, deployment, fallback position) and outcome."""
        self._record_call(
            ModelCall(
                run_id=request.context.run_id,
                tenant_id=request.context.tenant_id,
                task_class=request.task,
                route=request.route,
                model=model,
                fallback_position=position,
                status=status,
                error_kind=error_kind,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=usage.cost_usd,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        )
