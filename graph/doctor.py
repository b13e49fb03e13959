"""``firebreak doctor``: prove every configured store, model and the graph are usable, loudly (on the graph floor:
it checks every floor below the faces)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.errors import FirebreakError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _database(settings: Settings) -> Check:
    from memory.engine import make_engine
    from memory.migrate import current_revision, head_revision, is_current, tool_modules

    try:
        engine = make_engine(settings.database_url)
        current, head = current_revision(engine), head_revision()
        tools_current = is_current(engine, tool_modules(settings))  # the tool packages' own tables too
    except FirebreakError as exc:
        return Check("database", False, str(exc))
    if current != head:
        return Check("database", False, f"schema at {current}, code expects {head}: run `firebreak db upgrade`")
    if not tools_current:
        return Check("database", False, "a tool package's tables are not current: run `firebreak db upgrade`")
    return Check("database", True, f"{engine.url.render_as_string(hide_password=True)} at revision {current}")


async def _checkpointer(settings: Settings) -> Check:
    from memory.checkpointer import open_checkpointer

    try:
        async with open_checkpointer(settings.database_url) as saver:
            return Check("checkpointer", True, type(saver).__name__)
    except Exception as exc:  # any failure here means runs cannot resume
        return Check("checkpointer", False, f"{type(exc).__name__}: {exc}")


def _model(settings: Settings, model: str) -> Check:
    name = f"model {model}"
    provider = model.split("/", 1)[0]
    if provider == "local":
        from app.gateway.model_files import MODEL_FILE_NAME

        path = settings.local_model.cache_path / MODEL_FILE_NAME
        if not path.exists():
            return Check(name, False, f"{path} missing: run `firebreak setup` (or `make run`)")
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            return Check(name, False, f"llama-cpp-python is not installed: {exc}; run `make run`")
        return Check(name, True, str(path))
    if provider == "scripted":
        if not settings.script:
            return Check(name, False, "no script: set FIREBREAK_SCRIPT=path/to/script.jsonl")
        if not Path(settings.script).is_file():
            return Check(name, False, f"script {settings.script} does not exist")
        return Check(name, True, f"script {settings.script}")
    from app.gateway.provider_params import missing_provider_keys

    missing = missing_provider_keys(model)
    if missing:
        return Check(name, False, f"set {', '.join(missing)} in the environment")
    return Check(name, True, "credentials present")


def _graph(settings: Settings) -> Check:
    from graph.builder import configured_builder

    try:
        builder = configured_builder(settings.agent.graph)
        builder.compile()  # a node inserted on an edge that does not exist fails here, as at start-up
    except FirebreakError as exc:
        return Check("graph", False, str(exc))
    return Check("graph", True, f"{settings.agent.graph or 'built-in'}: {len(builder.nodes)} nodes")


def check_cache_models(settings: Settings, weights: Path | None = None) -> Check:
    """The cache's embedder package and, with ``verify`` on, the verifier's weights, each by its SHA-256.

    They load in the background when an agent opens, so a damaged file would otherwise surface only at the first
    lookup; ``weights`` is the verifier's file (the committed one unless a test gives another)."""
    from app.cache.verifier import WEIGHTS, base_model_dir, verifier_files

    if not settings.cache.enabled:
        return Check("cache models", True, "cache off")
    try:
        if not settings.cache.verify:
            return Check("cache models", True, f"embedder {base_model_dir()} (verifier off)")
        base, checked = verifier_files(weights or WEIGHTS)
    except FirebreakError as exc:
        return Check("cache models", False, str(exc))
    return Check("cache models", True, f"embedder {base}, verifier {checked} (SHA-256 checked)")


def _telemetry() -> Check:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return Check("telemetry", True, f"local span table; OTLP export to {endpoint}" if endpoint else "local span table")


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a failure would matter."""
    checks = [_database(settings), await _checkpointer(settings), _graph(settings)]
    models = dict.fromkeys(model for route in settings.routes.values() for model in route.models)
    checks += [_model(settings, model) for model in models]
    checks.append(check_cache_models(settings))
    checks.append(_telemetry())
    return checks
