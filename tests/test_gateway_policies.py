"""Gateway policies: per-minute rate limits per tenant and per user, and who a request acts as."""

from __future__ import annotations

import pytest
from conftest import run
from sqlmodel import Session, select

from app.gateway import CallContext
from app.services import build_services
from core.errors import IdentityRequired, RateLimited
from evals.scenario import SimulatedTime
from graph.agent import Agent
from graph.worker import submit
from memory.queue import QueueStore
from memory.tables import ModelCall

HELLO = [{"role": "user", "content": "hello"}]
ROUTE = "scripted/demo"
ADA = CallContext(tenant_id="acme", user_id="ada")


def _gateway(make_settings, database_url, script, clock, **rate_limits):
    limits = {"tenant": {"requests": 1000, "tokens": 1e9}, "user": {"requests": 1000, "tokens": 1e9}}
    for who, caps in rate_limits.items():
        limits[who] = {**limits[who], **caps}
    settings = make_settings(database_url, script=script, rate_limits=limits)
    return build_services(settings, clock=clock)


def _calls(services) -> int:
    with Session(services.engine) as session:
        return len(session.exec(select(ModelCall)).all())


def test_a_tenant_over_its_requests_per_minute_is_refused_with_a_retry_after(make_settings, database_url, write_script):
    clock = SimulatedTime(now=1_700_000_020.0)  # 40 s into a minute
    services = _gateway(
        make_settings, database_url, write_script({"text": "one"}, {"text": "two"}), clock, tenant={"requests": 2}
    )
    for _ in range(2):
        run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))

    with pytest.raises(
        RateLimited, match="rate limit of tenant acme: 2 requests per minute; retry after 20 s"
    ) as refused:
        run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))

    assert refused.value.retry_after_s == pytest.approx(20.0)
    assert _calls(services) == 2  # the refused call was never made (and the script was not read)
    services.gateway.verify_script_consumed()


def test_the_limit_opens_again_in_the_next_minute(make_settings, sqlite_url, write_script):
    clock = SimulatedTime(now=1_700_000_020.0)
    services = _gateway(
        make_settings, sqlite_url, write_script({"text": "one"}, {"text": "two"}), clock, tenant={"requests": 1}
    )
    run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))
    with pytest.raises(RateLimited) as refused:
        run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))

    clock.now += refused.value.retry_after_s

    assert run(services.gateway.chat(HELLO, route=ROUTE, context=ADA)).text == "two"


def test_one_users_limit_leaves_the_other_users_of_the_tenant_alone(make_settings, database_url, write_script):
    clock = SimulatedTime(now=1_700_000_000.0)
    services = _gateway(
        make_settings, database_url, write_script({"text": "ada"}, {"text": "bob"}), clock, user={"requests": 1}
    )
    run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))

    with pytest.raises(RateLimited, match="rate limit of user acme"):
        run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))
    reply = run(services.gateway.chat(HELLO, route=ROUTE, context=CallContext(tenant_id="acme", user_id="bob")))

    assert reply.text == "bob"


def test_tokens_per_minute_hold_each_calls_worst_case_until_it_settles(make_settings, sqlite_url, write_script):
    # A route's worst case is its prompt estimate plus max output tokens (384 on the default route).
    clock = SimulatedTime(now=1_700_000_000.0)
    services = _gateway(make_settings, sqlite_url, write_script({"text": "hi"}), clock, tenant={"tokens": 300})

    with pytest.raises(RateLimited, match="300 tokens per minute"):
        run(services.gateway.chat(HELLO, route=ROUTE, context=ADA))
    assert _calls(services) == 0
    services.close()


def test_a_rate_limited_run_ends_rate_limited_and_says_when_to_retry(make_settings, database_url, write_script):
    limits = {"tenant": {"requests": 0, "tokens": 1e9}, "user": {"requests": 1000, "tokens": 1e9}}
    settings = make_settings(database_url, script=write_script(), rate_limits=limits)

    async def ask():
        async with Agent.open(settings) as agent:
            return await agent.ask("hello", route=ROUTE)

    result = run(ask())

    assert result.status == "rate_limited"
    assert "requests per minute; retry after" in result.error


def test_a_request_without_an_identity_is_refused_where_defaults_are_not_allowed(
    make_settings, sqlite_url, write_script
):
    settings = make_settings(sqlite_url, script=write_script({"text": "hi"}), identity={"allow_default": False})

    async def ask(**identity):
        async with Agent.open(settings) as agent:
            return await agent.ask("hello", route=ROUTE, **identity)

    with pytest.raises(IdentityRequired, match="allow_default is false"):
        run(ask())
    with pytest.raises(IdentityRequired):
        run(ask(tenant_id="acme"))
    assert run(ask(tenant_id="acme", user_id="ada")).status == "answered"


def test_a_queued_run_needs_an_identity_where_defaults_are_not_allowed(make_settings, sqlite_url):
    settings = make_settings(sqlite_url, identity={"allow_default": False})
    store = QueueStore(build_services(settings).engine)

    with pytest.raises(IdentityRequired):
        submit(store, settings, "hello")
    assert submit(store, settings, "hello", tenant_id="acme", user_id="ada").tenant_id == "acme"


def test_a_local_install_acts_as_the_default_identity(make_settings, sqlite_url, write_script):
    settings = make_settings(sqlite_url, script=write_script({"text": "hi"}))

    async def ask():
        async with Agent.open(settings) as agent:
            result = await agent.ask("hello", route=ROUTE)
            return agent.services.runs.get(result.run_id)

    record = run(ask())

    assert (record.tenant_id, record.user_id) == (settings.identity.default_tenant, settings.identity.default_user)
