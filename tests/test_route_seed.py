"""A route's seed: sent to providers that sample by one, never to those LiteLLM says refuse it.

The providers are tests/fake_provider.py's server; the embedded model's own seed is tested on the real model in
tests/test_local_model_gateway.py.
"""

from __future__ import annotations

from typing import Any

from conftest import run

from app.gateway import CallContext
from app.services import build_services

CONTEXT = CallContext(tenant_id="acme", user_id="u1")
HELLO = [{"role": "user", "content": "hello"}]


def ask_on(make_settings, sqlite_url: str, model: str, tools: list | None = None, **route: Any) -> None:
    settings = make_settings(
        sqlite_url,
        routes={"remote": {"models": [model], "max_output_tokens": 16, "temperature": 0.7, "timeout_s": 10.0, **route}},
        retries={"attempts": 1},
    )
    services = build_services(settings)
    try:
        reply = run(services.gateway.chat(HELLO, route="remote", context=CONTEXT, tools=tools))
    finally:
        services.close()
    assert reply.text == "hi"


def test_a_seeded_route_sends_its_seed_to_a_provider_that_takes_one(make_settings, sqlite_url, provider):
    ask_on(make_settings, sqlite_url, "openai/gpt-4o-mini", seed=11)

    [body] = provider
    assert body["seed"] == 11


def test_a_route_without_a_seed_sends_none(make_settings, sqlite_url, provider):
    ask_on(make_settings, sqlite_url, "openai/gpt-4o-mini")

    [body] = provider
    assert "seed" not in body


def test_a_seeded_route_still_calls_a_provider_that_takes_no_seed_without_it(make_settings, sqlite_url, provider):
    # LiteLLM refuses a seed for Anthropic's models: the call goes out without it instead of failing.
    ask_on(make_settings, sqlite_url, "anthropic/claude-3-5-haiku-latest", seed=11)

    [body] = provider
    assert body["model"] == "claude-3-5-haiku-latest"
    assert "seed" not in body
