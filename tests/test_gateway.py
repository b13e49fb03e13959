"""The gateway on the scripted provider: replies, usage, fallbacks, faults, timeouts, audit rows."""

from __future__ import annotations

import random

import pytest
from conftest import run

from app.faults import FaultPlan
from app.gateway import CallContext
from app.services import Services, build_services
from core.config import FaultSettings
from core.errors import ConfigError, ModelError, ScriptError
from memory.queue import QueueStore

CONTEXT = CallContext(tenant_id="acme", user_id="u1", run_id=None)
PAIR = {
    "pair": {
        "models": ["scripted/primary", "scripted/backup"],
        "max_output_tokens": 64,
        "temperature": 0.0,
        "timeout_s": 2.0,
    }
}
HELLO = [{"role": "user", "content": "hello"}]


def services_for(make_settings, database_url, script, faults=None, **overrides) -> Services:
    settings = make_settings(database_url, script=script, **{"routes": PAIR, "retries": {"attempts": 1}, **overrides})
    return build_services(settings, faults=FaultPlan(faults or {}, rng=random.Random(7)))


def test_reply_carries_text_usage_and_an_audit_row(make_settings, database_url, write_script):
    script = write_script({"text": "hi", "usage": {"input_tokens": 11, "output_tokens": 3}})
    services = services_for(make_settings, database_url, script)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert (reply.text, reply.model, reply.usage.input_tokens, reply.usage.output_tokens) == (
        "hi",
        "scripted/primary",
        11,
        3,
    )
    services.telemetry.flush()
    (row,) = services.runs.recent_model_calls(tenant_id="acme")
    assert (row.model, row.status, row.input_tokens, row.output_tokens) == ("scripted/primary", "ok", 11, 3)


def test_priced_models_are_charged_by_the_token(make_settings, database_url, write_script):
    script = write_script({"text": "hi", "usage": {"input_tokens": 1000, "output_tokens": 500}})
    prices = {
        "scripted/primary": {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.00001, "context_window": 8192}
    }
    services = services_for(make_settings, database_url, script, models=prices)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.usage.cost_usd == pytest.approx(0.002 + 0.005)


def test_cached_input_tokens_are_charged_at_the_cache_price_and_the_rest_at_the_input_price(
    make_settings, database_url, write_script
):
    usage = {"input_tokens": 1000, "output_tokens": 100, "cached_input_tokens": 800}
    script = write_script({"text": "hi", "usage": usage})
    prices = {
        "scripted/primary": {
            "input_cost_per_token": 0.00001,
            "cached_input_cost_per_token": 0.000001,
            "output_cost_per_token": 0.00002,
            "context_window": 8192,
        }
    }
    services = services_for(make_settings, database_url, script, models=prices)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.usage.cached_input_tokens == 800
    assert reply.usage.cost_usd == pytest.approx(200 * 0.00001 + 800 * 0.000001 + 100 * 0.00002)


def test_cached_input_without_a_cache_price_is_charged_as_ordinary_input(make_settings, sqlite_url, write_script):
    usage = {"input_tokens": 1000, "output_tokens": 0, "cached_input_tokens": 1000}
    script = write_script({"text": "hi", "usage": usage})
    prices = {
        "scripted/primary": {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.0, "context_window": 8192}
    }
    services = services_for(make_settings, sqlite_url, script, models=prices)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.usage.cost_usd == pytest.approx(1000 * 0.00001)  # never cheaper than what we know it costs


def test_reasoning_tokens_reported_apart_from_the_output_are_charged_as_output(make_settings, sqlite_url, write_script):
    # A provider that counts 10 visible completion tokens and 500 reasoning tokens separately.
    usage = {"input_tokens": 100, "output_tokens": 10, "reasoning_tokens": 500}
    script = write_script({"text": "hi", "usage": usage})
    prices = {
        "scripted/primary": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.00001, "context_window": 8192}
    }
    services = services_for(make_settings, sqlite_url, script, models=prices)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert (reply.usage.output_tokens, reply.usage.reasoning_tokens) == (510, 500)
    assert reply.usage.cost_usd == pytest.approx(510 * 0.00001)


def test_transient_error_falls_back_to_the_next_model(make_settings, database_url, write_script):
    script = write_script({"error": "server"}, {"text": "from the backup"})
    services = services_for(make_settings, database_url, script)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert (reply.text, reply.model) == ("from the backup", "scripted/backup")
    rows = services.runs.recent_model_calls(tenant_id="acme")
    assert [(row.model, row.status, row.error_kind) for row in reversed(rows)] == [
        ("scripted/primary", "error", "server"),
        ("scripted/backup", "ok", None),
    ]


def test_client_errors_are_not_retried_on_a_fallback(make_settings, database_url, write_script):
    script = write_script({"error": "bad_request"})
    services = services_for(make_settings, database_url, script)

    with pytest.raises(ModelError) as caught:
        run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))
    assert (caught.value.kind, caught.value.transient) == ("bad_request", False)
    services.gateway.verify_script_consumed()


def test_refused_credentials_fall_back_to_the_next_model_without_a_retry(make_settings, database_url, write_script):
    script = write_script({"error": "auth"}, {"text": "from the backup"})
    services = services_for(make_settings, database_url, script, retries={"attempts": 3})
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.model == "scripted/backup"
    rows = services.runs.recent_model_calls(tenant_id="acme")
    assert [(row.model, row.error_kind) for row in reversed(rows)] == [
        ("scripted/primary", "auth"),
        ("scripted/backup", None),
    ]


def test_a_provider_whose_key_is_missing_is_named_and_the_route_goes_on(
    make_settings, sqlite_url, write_script, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the environment is the edge: this machine has no key
    routes = {"pair": {**PAIR["pair"], "models": ["openai/gpt-4o-mini", "scripted/backup"]}}
    services = services_for(make_settings, sqlite_url, write_script({"text": "from the backup"}), routes=routes)

    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.model == "scripted/backup"
    rows = services.runs.recent_model_calls(tenant_id="acme")
    assert [(row.model, row.error_kind) for row in reversed(rows)] == [
        ("openai/gpt-4o-mini", "auth"),
        ("scripted/backup", None),
    ]


def test_a_route_of_one_model_without_its_key_fails_once_with_the_key_to_set(make_settings, sqlite_url, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    routes = {"solo": {**PAIR["pair"], "models": ["openai/gpt-4o-mini"]}}
    services = services_for(make_settings, sqlite_url, "", routes=routes, retries={"attempts": 3})

    with pytest.raises(ModelError, match="openai/gpt-4o-mini needs OPENAI_API_KEY in the environment") as caught:
        run(services.gateway.chat(HELLO, route="solo", context=CONTEXT))

    assert (caught.value.kind, caught.value.transient) == ("auth", False)
    assert len(services.runs.recent_model_calls(tenant_id="acme")) == 1  # not retried as if it were an outage


def test_injected_fault_fails_the_primary_without_calling_it(make_settings, database_url, write_script):
    script = write_script({"text": "backup answered"})
    faults = {"scripted/primary": FaultSettings(error_rate=1.0, error_kind="rate_limit")}
    services = services_for(make_settings, database_url, script, faults=faults)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.model == "scripted/backup"
    services.gateway.verify_script_consumed()


def test_a_hung_model_times_out_as_a_transient_error(make_settings, database_url, write_script):
    script = write_script({"text": "never"})
    faults = {"scripted/primary": FaultSettings(hang=True), "scripted/backup": FaultSettings(hang=True)}
    services = services_for(
        make_settings, database_url, script, faults=faults, routes={"pair": {**PAIR["pair"], "timeout_s": 0.2}}
    )

    with pytest.raises(ModelError) as caught:
        run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))
    assert (caught.value.kind, caught.value.transient) == ("timeout", True)


def test_streaming_delivers_tokens_and_the_same_reply(make_settings, database_url, write_script):
    script = write_script({"text": "one two three"})
    services = services_for(make_settings, database_url, script)
    pieces: list[str] = []
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT, on_token=pieces.append))

    assert pieces == ["one ", "two ", "three"]
    assert reply.text == "one two three"
    assert reply.usage.output_tokens > 0


def test_streaming_returns_tool_calls(make_settings, database_url, write_script):
    script = write_script({"tool_calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]})
    services = services_for(make_settings, database_url, script)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT, on_token=lambda _: None))

    assert [(call.name, call.arguments) for call in reply.tool_calls] == [("a", '{"x": 1}'), ("b", "{}")]


def test_an_expectation_mismatch_is_a_script_error_not_a_fallback(make_settings, database_url, write_script):
    script = write_script({"expect": "order 99", "text": "x"}, {"text": "y"})
    services = services_for(make_settings, database_url, script)

    with pytest.raises(ScriptError, match="does not contain the expected text"):
        run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))


def test_a_scripted_model_without_a_script_is_a_config_error(make_settings, database_url):
    services = services_for(make_settings, database_url, "")

    with pytest.raises(ConfigError, match="FIREBREAK_SCRIPT"):
        services.gateway.prepare("pair")


def test_transient_errors_are_retried_on_the_same_model_before_falling_back(make_settings, database_url, write_script):
    script = write_script({"error": "rate_limit"}, {"error": "server"}, {"text": "from the backup"})
    retries = {"attempts": 2, "base_delay_s": 0.0, "max_delay_s": 0.0}
    services = services_for(make_settings, database_url, script, retries=retries)
    reply = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert reply.model == "scripted/backup"
    rows = services.runs.recent_model_calls(tenant_id="acme")
    assert [(row.model, row.error_kind) for row in reversed(rows)] == [
        ("scripted/primary", "rate_limit"),
        ("scripted/primary", "server"),
        ("scripted/backup", None),
    ]


def test_an_open_breaker_sends_calls_to_the_fallback_without_calling_the_primary(
    make_settings, database_url, write_script
):
    script = write_script({"error": "server"}, {"text": "backup one"}, {"text": "backup two"})
    trip_at_once = {"model:scripted/primary": {"minimum_calls": 1, "failure_threshold": 1}}
    services = services_for(make_settings, database_url, script, breakers={"overrides": trip_at_once})
    first = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))
    second = run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    assert (first.text, second.text) == ("backup one", "backup two")
    calls = [
        (row.model, row.status, row.fallback_position)
        for row in reversed(services.runs.recent_model_calls(tenant_id="acme"))
    ]
    assert calls == [("scripted/primary", "error", 0), ("scripted/backup", "ok", 1), ("scripted/backup", "ok", 1)]
    (breaker,) = [b for b in services.breakers.store.all() if b.name == "model:scripted/primary"]
    assert breaker.state == "open"
    services.telemetry.flush()
    fallback_spans = [s for s in services.runs.all_spans() if s.attributes.get("firebreak.fallback_reason")]
    assert [s.attributes["firebreak.fallback_reason"] for s in fallback_spans] == [
        "server on scripted/primary",
        "circuit_open on scripted/primary",
    ]


def test_a_breaker_that_opens_raises_one_alert_naming_its_backend(make_settings, database_url, write_script):
    script = write_script({"error": "server"}, {"text": "backup one"}, {"text": "backup two"})
    trip_at_once = {"model:scripted/primary": {"minimum_calls": 1, "failure_threshold": 1}}
    services = services_for(make_settings, database_url, script, breakers={"overrides": trip_at_once})
    run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))
    run(services.gateway.chat(HELLO, route="pair", context=CONTEXT))

    (alert,) = [row for row in QueueStore(services.engine).alerts() if row.kind == "breaker_open"]
    assert alert.payload["backend"] == "model:scripted/primary"
    assert "model:scripted/primary opened" in alert.message
