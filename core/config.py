"""Configuration: ``firebreak.toml`` merged with an optional user file, then ``FIREBREAK_*``.

The repository's ``firebreak.toml`` is the only place defaults live; the models
below declare shapes, not values, so the documented file and the code cannot
drift apart.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError, IdentityRequired

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "firebreak.toml"
ErrorKind = Literal["server", "rate_limit", "timeout", "connection", "bad_request", "auth"]


class Section(BaseModel):
    """A config table: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid")


S = TypeVar("S", bound="Section")


def overridden(shape: type[S], defaults: BaseModel, overrides: Mapping[str, Any]) -> S:
    """``shape``'s fields from ``defaults`` with ``overrides`` (one route's or backend's table) applied."""
    values = {name: getattr(defaults, name) for name in shape.model_fields}
    return shape.model_validate({**values, **overrides})


class AgentSettings(Section):
    default_route: str
    system_prompt: str
    graph: str  # "module:attribute" of a GraphBuilder (or a function returning one); "" is the built-in graph
    max_steps: int = Field(ge=1)
    run_wall_clock_s: float = Field(gt=0)


class IdentitySettings(Section):
    allow_default: bool
    default_tenant: str
    default_user: str

    def resolve(self, tenant_id: str | None, user_id: str | None) -> tuple[str, str]:
        """Who a request acts as: as given, else the defaults, which only a local install allows."""
        if tenant_id and user_id:
            return tenant_id, user_id
        if not self.allow_default:
            raise IdentityRequired(
                "this request names no tenant and user, and [identity] allow_default is false: "
                "pass them (--tenant and --user in the CLI)"
            )
        return tenant_id or self.default_tenant, user_id or self.default_user


class RouteSettings(Section):
    models: list[str] = Field(min_length=1)
    max_output_tokens: int = Field(gt=0)
    temperature: float = Field(ge=0)
    timeout_s: float = Field(gt=0)
    # The sampler's seed, for repeatable runs where the model takes one (the embedded model, OpenAI's); a model
    # LiteLLM says takes none is called without it. None: unseeded.
    seed: int | None = Field(default=None, ge=0)


class ModelSettings(Section):
    input_cost_per_token: float = Field(ge=0)
    output_cost_per_token: float = Field(ge=0)
    context_window: int = Field(gt=0)
    # Price of input tokens the provider served from its prompt cache; absent: the input price.
    cached_input_cost_per_token: float | None = Field(default=None, ge=0)


class LocalModelSettings(Section):
    threads: int = Field(ge=1)
    context_window: int = Field(gt=0)
    cache_dir: str

    @property
    def cache_path(self) -> Path:
        return Path(os.path.expanduser(self.cache_dir))


class HttpApiSettings(Section):
    base_url: str


class ExternalToolPolicy(Section):
    """Firebreak's metadata for a tool that brings none (a LangChain tool, an MCP server's tool), by tool name."""

    kind: Literal["read", "write"] | None = None  # None: a write, unless a trusted MCP server says read-only
    cost_class: Literal["db", "web_search", "code", "llm", "external_api"] = "external_api"
    timeout_s: float | None = Field(default=None, gt=0)
    retries: int | None = Field(default=None, ge=1, le=10)
    cached: bool = False
    substitute: str | None = None
    trusted_output: bool = False
    shared: bool = False
    egress: bool = False
    examples: list[str] = Field(default_factory=list)  # questions a user would ask it for (see ``tool(examples=)``)


class ToolSettings(Section):
    modules: list[str]
    max_result_chars: int = Field(gt=0)
    class_timeouts_s: dict[str, float]
    timeouts_s: dict[str, float]
    http_api: HttpApiSettings
    external: dict[str, ExternalToolPolicy] = Field(default_factory=dict)


class McpServerSettings(Section):
    """One MCP tool server: a stdio command or a streamable-HTTP URL (exactly one)."""

    command: list[str] = Field(default_factory=list)
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # Honour the server's own annotations (readOnlyHint) when deciding read vs write: only for servers you run.
    trusted: bool = False
    connect_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if bool(self.command) == bool(self.url):
            raise ValueError("an MCP server needs exactly one of command (stdio) or url (streamable HTTP)")
        return self


class McpSettings(Section):
    servers: dict[str, McpServerSettings] = Field(default_factory=dict)


class FaultSettings(Section):
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_kind: ErrorKind = "server"
    latency_ms: float = Field(default=0.0, ge=0)
    latency_after_ms: float = Field(default=0.0, ge=0)
    hang: bool = False


class BreakerThresholds(Section):
    window_s: int = Field(ge=1)
    minimum_calls: int = Field(ge=1)
    failure_threshold: int = Field(ge=1)
    slow_call_threshold: int = Field(ge=1)
    cooldown_s: float = Field(gt=0)
    cooldown_growth: float = Field(ge=1)
    max_cooldown_s: float = Field(gt=0)
    half_open_permits: int = Field(ge=1)
    permit_ttl_s: float = Field(gt=0)


class BreakerSettings(BreakerThresholds):
    overrides: dict[str, dict[str, float]]

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> BreakerSettings:
        for backend in self.overrides:
            self.for_backend(backend)
        return self

    def for_backend(self, name: str) -> BreakerThresholds:
        """This backend's thresholds: the defaults with its overrides applied."""
        return overridden(BreakerThresholds, self, self.overrides.get(name, {}))


class RetrySettings(Section):
    attempts: int = Field(ge=1, le=10)
    base_delay_s: float = Field(ge=0)
    max_delay_s: float = Field(ge=0)


class IdempotencySettings(Section):
    ttl_s: float = Field(gt=0)
    in_flight_lease_s: float = Field(gt=0)
    request_key_ttl_s: float = Field(gt=0)


class Caps(Section):
    tokens: float = Field(ge=0)
    tool_calls: float = Field(ge=0)
    db_mutations: float = Field(ge=0)
    emails: float = Field(ge=0)
    cost_usd: float = Field(ge=0)


class LimitSettings(Section):
    read_only: bool
    unpriced_input_cost_per_token: float = Field(gt=0)
    unpriced_output_cost_per_token: float = Field(gt=0)
    reservation_ttl_s: float = Field(gt=0)
    request: Caps
    session: Caps
    day: Caps


class RateCaps(Section):
    requests: float = Field(ge=0)
    tokens: float = Field(ge=0)


class RateLimitSettings(Section):
    tenant: RateCaps
    user: RateCaps


class SafetySettings(Section):
    dangerous_tools: list[str]
    jailbreak_patterns: list[str]
    jailbreak_limit: int = Field(ge=1)
    policy_patterns: list[str]
    block_card_numbers: bool


class GateThresholds(Section):
    execute_above: float = Field(ge=0, le=1)
    confirm_above: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> GateThresholds:
        if self.confirm_above > self.execute_above:
            raise ValueError("confirm_above must not be above execute_above")
        return self

    def band(self, score: float) -> Literal["execute", "confirm", "human"]:
        """The seed's routing: above execute_above run it, above confirm_above ask the user, else a human."""
        if score > self.execute_above:
            return "execute"
        return "confirm" if score >= self.confirm_above else "human"


# What a write or egress read proposed after untrusted tool output gets: a reviewer, the user's confirmation, or
# the score alone (as without untrusted data).
UntrustedPolicy = Literal["review", "confirm", "allow"]


class GateSettings(GateThresholds):
    estimator: Literal["self_critique", "verifier", "fixed"]
    critique_max_tokens: int = Field(gt=0)
    actions: list[Literal["read", "write", "answer"]]
    fixed_default: float = Field(ge=0, le=1)
    fixed_scores: dict[str, Annotated[float, Field(ge=0, le=1)]]
    require_approval: list[str]
    after_untrusted: UntrustedPolicy
    after_untrusted_tools: dict[str, UntrustedPolicy]
    routes: dict[str, dict[str, float]]

    def untrusted_policy(self, tool: str) -> UntrustedPolicy:
        """What ``tool`` gets when proposed after untrusted tool output: its own policy, or the default."""
        return self.after_untrusted_tools.get(tool, self.after_untrusted)

    @model_validator(mode="after")
    def _routes_are_valid(self) -> GateSettings:
        for route in self.routes:
            self.for_route(route)
        return self

    def for_route(self, route: str) -> GateThresholds:
        """This route's thresholds: the defaults with its overrides applied."""
        return overridden(GateThresholds, self, self.routes.get(route, {}))


# Model calls by task class. "answer" (the agent's turns) and "self_critique" (the deciding model grading its
# own action) always use the run's route; the others may be sent elsewhere by [routing].
TaskClass = Literal["answer", "self_critique", "verify", "summarize", "plan"]
ROUTABLE_TASKS = ("verify", "summarize", "plan")


class RoutingSettings(Section):
    verify: str  # the route of the gate's verifier estimator
    summarize: str  # the route that writes context checkpoints' summaries
    plan: str  # the route that writes plans and replans (a strong model, where there is one)

    def route_for(self, task: TaskClass, run_route: str) -> str:
        """The route that serves ``task`` in a run on ``run_route``."""
        routed: str = getattr(self, task, "") if task in ROUTABLE_TASKS else ""
        return routed or run_route


class SharedStateSettings(Section):
    max_changes: int = Field(ge=1)  # per entity: agents that keep undoing each other stop here


class TeamSettings(Section):
    max_rounds: int = Field(ge=1)  # writer drafts the reviewer may send back before the team stops
    poll_s: float = Field(gt=0)  # how often a choreography subscriber reads the event log
    tool_modules: list[str]  # tools only team members see, besides [tools] modules


class PlannerSettings(Section):
    enabled: bool  # plan every run first; a run may also ask for it (``plan=True``, ``ask --plan``)
    max_steps: int = Field(ge=1)
    max_replans: int = Field(ge=0)


class ContextSettings(Section):
    enabled: bool
    max_fraction: float = Field(gt=0, lt=1)
    every_turns: int = Field(ge=0)
    keep_recent: int = Field(ge=1)
    summary_max_tokens: int = Field(gt=0)


class TriggerSettings(Section):
    human_request_patterns: list[str]
    high_risk_topics: dict[str, list[str]]
    negative_sentiment_threshold: float = Field(ge=-1, le=1)
    sentiment_spike: float = Field(ge=0, le=2)
    rephrase_similarity: float = Field(gt=0, le=1)
    rephrase_count: int = Field(ge=1)


EscalationType = Literal["targeted", "confirmation", "full_handoff", "immediate_transfer", "collaborative"]


class EscalationPolicy(Section):
    timeout_s: float = Field(gt=0)
    on_timeout: Literal["expire", "escalate"]


class EscalationSettings(Section):
    max_level: int = Field(ge=0)
    sweep_period_s: float = Field(gt=0)
    policies: dict[EscalationType, EscalationPolicy]

    @model_validator(mode="after")
    def _every_type_has_a_policy(self) -> EscalationSettings:
        missing = set(EscalationType.__args__) - set(self.policies)  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"[escalation.policies] is missing {sorted(missing)}")
        return self


class CacheTtls(Section):
    llm_response: float = Field(gt=0)
    read_tool: float = Field(gt=0)
    embedding: float = Field(gt=0)


class CacheThresholds(Section):
    recall_similarity: float = Field(gt=0, le=1)
    serve_similarity: float = Field(gt=0, le=1)
    verified_at: float = Field(gt=0, le=1)  # P(same) from the verifier at or above which a candidate is served
    different_below: float = Field(ge=0, le=1)  # below: a different question; in between: unsure, a miss

    @model_validator(mode="after")
    def _ordered(self) -> CacheThresholds:
        if self.recall_similarity > self.serve_similarity:
            raise ValueError("recall_similarity must not be above serve_similarity")
        if self.different_below > self.verified_at:
            raise ValueError("different_below must not be above verified_at")
        return self


EmbeddingRuntime = Literal["numpy", "sentence-transformers"]


class CacheSettings(CacheThresholds):
    enabled: bool
    embedding_runtime: EmbeddingRuntime  # what runs all-MiniLM-L6-v2 (app/embeddings.py); same vectors either way
    verify: bool  # the learned verifier reads every candidate with the query (app/cache/verifier.py)
    guards: list[str]  # lexical guards run before it, by name (app/cache/guards.py GUARDS)
    candidates: int = Field(ge=1, le=100)
    max_entries: int = Field(ge=1)
    hnsw_above: int = Field(ge=1)
    index_dir: str  # saved scope indexes; "": beside a SQLite file, else ~/.cache/firebreak/cache-index
    write_intent_patterns: list[str]
    ttl_s: CacheTtls
    routes: dict[str, dict[str, float]]

    @model_validator(mode="after")
    def _routes_are_valid(self) -> CacheSettings:
        for route in self.routes:
            self.for_route(route)
        return self

    def for_route(self, route: str) -> CacheThresholds:
        """This route's thresholds: the defaults with its overrides applied."""
        return overridden(CacheThresholds, self, self.routes.get(route, {}))


class QueueSettings(Section):
    max_attempts: int = Field(ge=1, le=20)
    max_attempts_by_task: dict[str, Annotated[int, Field(ge=1, le=20)]]
    lease_s: float = Field(gt=0)
    poll_s: float = Field(gt=0)
    retry_base_delay_s: float = Field(ge=0)
    dlq_alert_threshold: int = Field(ge=1)
    dlq_alert_window_s: float = Field(gt=0)
    alert_webhook: str


class CanaryMetric(Section):
    critical: bool  # a critical metric that fails rolls the canary back; another one holds the rollout
    tolerance: float = Field(ge=0)  # rates: allowed absolute increase; cost and latency: relative increase


class CanaryMetrics(Section):
    error_rate: CanaryMetric
    flag_rate: CanaryMetric
    cost_per_run: CanaryMetric
    latency_p95: CanaryMetric


class CanarySettings(Section):
    steps: list[Annotated[float, Field(gt=0, le=100)]] = Field(min_length=1)
    min_runs: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    min_step_s: float = Field(ge=0)
    alpha: float = Field(gt=0, lt=1)
    auto_promote: bool
    sticky: Literal["user", "session"]
    early_users: list[str]
    metrics: CanaryMetrics

    @model_validator(mode="after")
    def _ramp_is_valid(self) -> CanarySettings:
        if self.steps != sorted(set(self.steps)) or self.steps[-1] != 100:
            raise ValueError("canary.steps must rise strictly and end at 100")
        if len(self.min_runs) != len(self.steps) - 1:
            raise ValueError("canary.min_runs needs one entry per step before the last (100%)")
        return self

    def min_runs_at(self, step: int) -> int:
        """Runs each arm needs in ``step``'s window before its analysis can conclude."""
        return self.min_runs[min(step, len(self.min_runs) - 1)]


class ReleaseSettings(Section):
    """An agent version: anything left out is taken from [agent] and [planner]."""

    system_prompt: str | None = None
    route: str | None = None
    planner: bool | None = None
    graph: str | None = None  # "module:attribute", as [agent] graph


class TelemetrySettings(Section):
    service_name: str
    record_content: bool
    metrics_interval_s: float = Field(gt=0)
    prometheus_port: int = Field(ge=0, le=65535)  # 0: no scrape endpoint
    prometheus_host: str


class UiSettings(Section):
    host: str
    port: int


Role = Literal["reviewer", "operator", "admin"]


class OperatorSettings(Section):
    role: Role
    # Only the token's SHA-256 is configured: `firebreak operators add NAME` prints a token and this line.
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The tenants whose data this operator sees and acts on; empty means every tenant.
    tenants: list[str] = Field(default_factory=list)


class OperatorsSettings(Section):
    local_role: Role | Literal[""]
    people: dict[str, OperatorSettings] = Field(default_factory=dict)


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="FIREBREAK_", env_nested_delimiter="__", extra="forbid")

    database_url: str
    auto_migrate: bool
    script: str
    agent: AgentSettings
    identity: IdentitySettings
    routes: dict[str, RouteSettings]
    models: dict[str, ModelSettings]
    local_model: LocalModelSettings
    tools: ToolSettings
    mcp: McpSettings = Field(default_factory=McpSettings)
    faults: dict[str, FaultSettings]
    breakers: BreakerSettings
    retries: RetrySettings
    idempotency: IdempotencySettings
    safety: SafetySettings
    limits: LimitSettings
    rate_limits: RateLimitSettings
    routing: RoutingSettings
    context: ContextSettings
    planner: PlannerSettings
    shared_state: SharedStateSettings
    team: TeamSettings
    gate: GateSettings
    triggers: TriggerSettings
    escalation: EscalationSettings
    cache: CacheSettings
    queue: QueueSettings
    canary: CanarySettings
    releases: dict[str, ReleaseSettings]
    telemetry: TelemetrySettings
    ui: UiSettings
    operators: OperatorsSettings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the files, which arrive as init arguments.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _routed_tasks_have_routes(self) -> Settings:
        for task in ROUTABLE_TASKS:
            target = getattr(self.routing, task)
            if target and target not in self.routes and "/" not in target:
                raise ValueError(f"routing.{task} names route {target!r}, which is not in [routes]")
        return self

    def route(self, name: str) -> RouteSettings:
        """The named route, or a one-model route when ``name`` is a model string."""
        if name in self.routes:
            return self.routes[name]
        if "/" in name:
            base = self.routes[self.agent.default_route]
            return base.model_copy(update={"models": [name]})
        raise ConfigError(
            f"unknown route {name!r}: use one of {sorted(self.routes)} or a model name such as 'scripted/demo'"
        )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``, recursing into tables."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load the defaults, merge the user file (``path`` or ``FIREBREAK_CONFIG``) and the environment.

    ``overrides`` are merged last but below the environment; tests use them to
    point at their own database without touching the process environment.
    """
    data = _read_toml(DEFAULT_CONFIG_PATH)
    user_path = path or os.environ.get("FIREBREAK_CONFIG")
    if user_path:
        data = deep_merge(data, _read_toml(Path(user_path)))
    data = deep_merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
