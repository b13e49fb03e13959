"""A route's seed: sent to providers that sample by one, never to those LiteLLM says refuse it.

The providers are one fake HTTP server at the edge of the world, speaking OpenAI's and Anthropic's APIs and
keeping every request body it received; everything between the route and the wire is the real gateway and
LiteLLM. The embedded model's own seed is tested on the real model in tests/test_local_model_gateway.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import run

from app.gateway import CallContext
from app.services import build_services

CONTEXT = CallContext(tenant_id="acme", user_id="u1")
HELLO = [{"role": "user", "content": "hello"}]


def openai_reply(model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": "hi"}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def anthropic_reply(model: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A provider on loopback; returns the request bodies it receives. LiteLLM finds it by its environment."""
    received: list[dict[str, Any]] = []

    class Provider(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            reply = anthropic_reply if self.path.endswith("/messages") else openai_reply
            data = json.dumps(reply(body["model"])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": f"{base}/v1",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": base,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield received
    finally:
        server.shutdown()


def ask_on(make_settings, sqlite_url: str, model: str, **route: Any) -> None:
    settings = make_settings(
        sqlite_url,
        routes={"remote": {"models": [model], "max_output_tokens": 16, "temperature": 0.7, "timeout_s": 10.0, **route}},
        retries={"attempts": 1},
    )
    services = build_services(settings)
    try:
        reply = run(services.gateway.chat(HELLO, route="remote", context=CONTEXT))
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
