"""The suite's network guard: a call that would reach a real provider fails, loopback services still work."""

from __future__ import annotations

import socket

import litellm
import network_guard
import pytest


def test_a_connection_off_this_machine_is_refused():
    with pytest.raises(network_guard.OffMachineConnection), socket.socket() as sock:
        sock.connect(("203.0.113.7", 443))  # TEST-NET-3: no real host, and never reached

    assert network_guard.refused == ["('203.0.113.7', 443)"]
    network_guard.refused.clear()  # seen: this test wanted it


def test_a_real_provider_call_is_refused_even_when_the_client_swallows_the_error():
    with pytest.raises(Exception):  # noqa: B017 - LiteLLM wraps the refusal in its own connection error
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base="http://203.0.113.7:9/v1",
            api_key="not-a-key",
            messages=[{"role": "user", "content": "hi"}],
            num_retries=0,
            timeout=5,
        )

    assert network_guard.refused, "the provider call left the machine unnoticed"
    network_guard.refused.clear()


def test_a_connection_to_a_service_on_this_machine_passes():
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client.connect(server.getsockname())

        assert network_guard.refused == []


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        (("127.0.0.1", 5432), True),
        (("::1", 4318, 0, 0), True),
        (("localhost", 80), True),
        (("10.0.0.1", 80), False),
        (("api.openai.com", 443), False),
        ("/run/postgresql/.s.PGSQL.5432", True),
    ],
)
def test_what_counts_as_staying_on_the_machine(address, loopback):
    assert network_guard.is_loopback(address) is loopback
