"""Circuit breaker semantics on a real database, with an injected clock at exact window boundaries."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.resilience.breaker import BreakerPolicy, CircuitBreakers, Permit, Transition
from core.errors import CircuitOpen
from memory.breakers import BreakerStore
from memory.engine import make_engine
from memory.migrate import upgrade

POLICY = BreakerPolicy(
    window_s=60,
    minimum_calls=5,
    failure_threshold=5,
    slow_call_threshold=3,
    cooldown_s=30.0,
    cooldown_growth=2.0,
    max_cooldown_s=100.0,
    half_open_permits=1,
    permit_ttl_s=10.0,
)
NAME = "tool:pricing_api"


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Board:
    breakers: CircuitBreakers
    clock: Clock
    transitions: list[Transition] = field(default_factory=list)

    def fail(self, times: int = 1) -> None:
        for _ in range(times):
            self.breakers.record(self.breakers.acquire(NAME), "failure")

    def state(self) -> str:
        return self.breakers.store.get(NAME, self.clock()).state


def board_for(database_url: str, policy: BreakerPolicy = POLICY) -> Board:
    engine = make_engine(database_url)
    upgrade(engine)
    clock = Clock()
    board = Board(CircuitBreakers(BreakerStore(engine), lambda _: policy, clock=clock), clock)
    board.breakers._on_transition = board.transitions.append
    return board


@pytest.fixture
def board(database_url) -> Board:
    return board_for(database_url)


def test_it_opens_at_the_fifth_failure_in_the_window_and_then_fails_fast(board):
    board.fail(4)
    assert board.state() == "closed"
    board.fail()

    assert board.state() == "open"
    with pytest.raises(CircuitOpen) as refused:
        board.breakers.acquire(NAME)
    assert refused.value.retry_after_s == pytest.approx(30.0)
    assert [(t.from_state, t.to_state) for t in board.transitions] == [("closed", "open")]
    assert board.transitions[0].reason == "5 failures in 5 calls within 60s"


def test_failures_older_than_the_window_do_not_count(board):
    board.clock.now = 1_000_000.0
    board.fail()
    board.clock.now += 59.999  # still the 60th whole second of the window: the first failure counts
    board.fail(3)
    board.clock.now = 1_000_060.0  # the first failure's second has left the window
    board.fail()

    assert board.state() == "closed"
    board.fail()
    assert board.state() == "open"


def test_the_window_needs_its_minimum_number_of_calls(database_url):
    board = board_for(database_url, BreakerPolicy(**{**POLICY.__dict__, "minimum_calls": 8, "failure_threshold": 2}))
    board.fail(2)
    for _ in range(5):
        board.breakers.record(board.breakers.acquire(NAME), "success")
    assert board.state() == "closed"  # 7 calls: not yet enough to judge
    board.fail()
    assert board.state() == "open"


def test_client_errors_neither_count_nor_trip(board):
    for _ in range(20):
        board.breakers.record(board.breakers.acquire(NAME), "ignored")
    assert board.state() == "closed"
    assert board.breakers.store.window(NAME, 0, 2_000_000).calls == 0


def test_slow_calls_trip_it_through_their_own_threshold(database_url):
    board = board_for(database_url, BreakerPolicy(**{**POLICY.__dict__, "minimum_calls": 3}))
    for _ in range(3):
        board.breakers.record(board.breakers.acquire(NAME), "slow")
    assert board.state() == "open"


def test_after_the_cooldown_one_probe_is_admitted_and_its_success_closes_the_breaker(board):
    board.fail(5)
    board.clock.now += 29.9
    with pytest.raises(CircuitOpen):
        board.breakers.acquire(NAME)
    board.clock.now += 0.1
    probe = board.breakers.acquire(NAME)

    assert probe == Permit(NAME, probe=True, issued_at=board.clock.now)
    with pytest.raises(CircuitOpen):
        board.breakers.acquire(NAME)  # the single permit is taken
    board.breakers.record(probe, "success")
    assert board.state() == "closed"
    assert board.breakers.store.window(NAME, 0, 2_000_000).calls == 0  # a closed breaker starts a fresh window
    assert [t.to_state for t in board.transitions] == ["open", "half_open", "closed"]


def test_a_failed_probe_reopens_with_a_longer_cooldown_up_to_the_maximum(board):
    board.fail(5)
    cooldowns = []
    for _ in range(3):
        row = board.breakers.store.get(NAME, board.clock())
        cooldowns.append(row.open_until - board.clock())
        board.clock.now = row.open_until
        board.breakers.record(board.breakers.acquire(NAME), "failure")
    assert cooldowns == [30.0, 60.0, 100.0]


def test_a_probe_that_never_returns_frees_its_permit_after_its_ttl(board):
    board.fail(5)
    board.clock.now += 30
    board.breakers.acquire(NAME)  # this probe's caller dies
    board.clock.now += 9.9
    with pytest.raises(CircuitOpen):
        board.breakers.acquire(NAME)
    board.clock.now += 0.1
    assert board.breakers.acquire(NAME).probe


def test_an_ignored_probe_releases_its_permit(board):
    board.fail(5)
    board.clock.now += 30
    board.breakers.record(board.breakers.acquire(NAME), "ignored")
    assert board.state() == "half_open"
    assert board.breakers.acquire(NAME).probe


def test_exactly_one_of_many_concurrent_callers_gets_the_half_open_probe(board):
    board.fail(5)
    board.clock.now += 30
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def caller() -> None:
        start.wait()
        try:
            outcomes.append("probe" if board.breakers.acquire(NAME).probe else "call")
        except CircuitOpen:
            outcomes.append("refused")

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["probe"] + ["refused"] * 15


def test_a_breaker_opened_by_one_process_refuses_calls_in_another(database_url, board):
    board.fail(5)
    other = textwrap.dedent(f"""
        from core.errors import CircuitOpen
        from app.resilience.breaker import BreakerPolicy, CircuitBreakers
        from memory.breakers import BreakerStore
        from memory.engine import make_engine
        policy = BreakerPolicy(**{POLICY.__dict__!r})
        breakers = CircuitBreakers(BreakerStore(make_engine({database_url!r})), lambda _: policy,
                                   clock=lambda: {board.clock.now + 1!r})
        try:
            breakers.acquire({NAME!r})
            print("called")
        except CircuitOpen:
            print("refused")
    """)
    done = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "refused", done.stderr


outcomes = st.sampled_from(["success", "failure", "slow", "ignored"])
steps = st.lists(st.tuples(outcomes, st.floats(min_value=0, max_value=20)), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_it_opens_only_on_enough_bad_calls_and_never_admits_two_probes(sqlite_url, steps):
    board = board_for(sqlite_url)
    name = f"tool:{uuid.uuid4().hex}"  # examples share the database file, never a breaker
    counted: list[tuple[int, str]] = []  # (second, outcome) since the breaker last closed
    for outcome, pause in steps:
        board.clock.now += pause
        try:
            permit = board.breakers.acquire(name)
        except CircuitOpen:
            assert board.breakers.store.get(name, board.clock()).state != "closed"
            continue
        before = board.breakers.store.get(name, board.clock())
        assert not (permit.probe and before.permits_taken > POLICY.half_open_permits)
        board.breakers.record(permit, outcome)
        after = board.breakers.store.get(name, board.clock()).state
        if before.state == "closed" and outcome != "ignored":
            counted.append((int(board.clock.now), outcome))
        if before.state == "closed" and after == "open":
            window = [o for second, o in counted if second > int(board.clock.now) - POLICY.window_s]
            assert len(window) >= POLICY.minimum_calls
            assert window.count("failure") >= POLICY.failure_threshold or window.count("slow") >= 3
        if after == "closed" and before.state != "closed":
            counted.clear()
