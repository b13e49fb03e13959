"""``firebreak eval quality``: task cases asked through the real agent, every expectation scored.

Cases live in a TOML file (:data:`DATASET`, documented at its top): a question, optionally earlier turns of the
same conversation, what must hold afterwards (``expect``) and, for the scripted model, the model's replies
(``script``). The format borrows pydantic-evals' case (name, inputs, expected output, metadata) and
promptfoo's declarative assertions (contains, equals), without code in the file, so anyone can add a case.

Each case runs on a fresh SQLite database (a case that cancels an order must not change the next one's
answer) through :class:`graph.agent.Agent`: the real graph, tools, gate, triggers and safety breaker. On the
scripted model every case must pass (CI runs it); on a real model (``--model chat``) the suite reports a
score, the share of cases that passed, and fails when it falls below the minimum: ``--min-score``, or else the
baseline the dataset's ``[baselines]`` table commits for that route (a route without one is measured, not gated).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.gateway.script import parse_step
from core.config import Settings, load_settings
from core.errors import ScriptError
from evals.scenario import Scenario, suite_report
from graph.agent import Agent, RunResult

DATASET = Path(__file__).resolve().parent / "data" / "quality.toml"
# Cases never used to choose anything (decision 0054): reported on the embedded model, pinned by this digest.
FROZEN_TEST = DATASET.with_name("quality_test.toml")
FROZEN_TEST_SHA256 = "09186cb77811d71954e54709f257f8bd0c85998a66e213463f2c0e98704ba86d"
SCRIPTED_ROUTE = "scripted/quality"
EMBEDDED_ROUTE = "chat"  # the shipped configuration's default route: the embedded model
KINDS = ("answer", "tool", "multi_step", "refuse", "escalate")
ESCALATIONS = ("immediate_transfer", "full_handoff", "targeted", "confirmation", "collaborative")
CASE_KEYS = {"name", "kind", "question", "before", "expect", "script"}
TEXT_LISTS = ("tools", "forbidden_tools", "answer_contains", "answer_contains_any", "answer_excludes")
EXPECT_KEYS = {"status", "escalation", *TEXT_LISTS}
NAME = re.compile(r"^[A-Za-z0-9_]+$")
ANSWER_SHOWN = 160  # characters of each answer kept in the report: enough to see why a check failed


class CaseError(ValueError):
    """A case that is not valid; the message names the file, the case and the field."""


@dataclass(frozen=True)
class Baseline:
    """The score a route must reach on a dataset, and the model it was measured on."""

    route: str
    score: float
    model: str | None = None


@dataclass(frozen=True)
class MinScore:
    """The threshold a run is judged by, and where it comes from (said in the verdict)."""

    score: float
    source: str


@dataclass(frozen=True)
class Expect:
    status: tuple[str, ...] = ()
    escalation: str | None = None
    tools: tuple[str, ...] = ()
    forbidden_tools: tuple[str, ...] = ()
    answer_contains: tuple[str, ...] = ()
    answer_contains_any: tuple[str, ...] = ()
    answer_excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    question: str
    expect: Expect
    before: tuple[str, ...] = ()
    script: tuple[dict[str, Any], ...] | None = None  # None: no script, the case needs a real model


@dataclass(frozen=True)
class Outcome:
    """What a case's conversation did, as the checks read it."""

    status: str
    answer: str
    tools_ran: tuple[str, ...]  # tools that ran successfully, in order, over the whole conversation
    escalations: tuple[str, ...]  # types of the escalations the scored run waits for
    error: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


# -- loading ------------------------------------------------------------------------------------------------------


def _texts(value: Any, where: str, *, allow_one: bool = False) -> tuple[str, ...]:
    """A list of non-empty strings (or, with ``allow_one``, a single string)."""
    if allow_one and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        raise CaseError(f"{where}: must be {'a string or ' if allow_one else ''}a non-empty list of non-empty strings")
    return tuple(value)


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CaseError(f"{where}.{key}: required, a non-empty string")
    return value


def _unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise CaseError(f"{where}: unknown field {unknown[0]!r}; allowed: {sorted(allowed)}")


def _expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, dict) or not raw:
        raise CaseError(f"{where}: required, a table with at least one of {sorted(EXPECT_KEYS)}")
    _unknown(raw, EXPECT_KEYS, where)
    escalation = raw.get("escalation")
    if escalation is not None and escalation not in ESCALATIONS:
        raise CaseError(f"{where}.escalation: must be one of {list(ESCALATIONS)}, not {escalation!r}")
    lists = {key: _texts(raw[key], f"{where}.{key}") for key in TEXT_LISTS if key in raw}
    status = _texts(raw["status"], f"{where}.status", allow_one=True) if "status" in raw else ()
    return Expect(status=status, escalation=escalation, **lists)


def _script(raw: Any, where: str) -> tuple[dict[str, Any], ...]:
    """The replies, each checked by the scripted model's own parser so a typo fails here, not mid-run."""
    if not isinstance(raw, list):
        raise CaseError(f"{where}: must be a list of replies (inline tables)")
    for number, reply in enumerate(raw, start=1):
        try:
            parse_step(reply, f"{where}[{number}]", number)
        except ScriptError as exc:
            raise CaseError(str(exc)) from None
    return tuple(raw)


def parse_case(raw: Any, where: str) -> Case:
    """One ``[[cases]]`` table; ``where`` names the file and the case in every error."""
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: must be a table")
    name = _text(raw, "name", where)
    if not NAME.match(name):
        raise CaseError(f"{where}.name: only letters, digits and _, not {name!r}")
    where = f"{where} ({name!r})"
    _unknown(raw, CASE_KEYS, where)
    kind = _text(raw, "kind", where)
    if kind not in KINDS:
        raise CaseError(f"{where}.kind: must be one of {list(KINDS)}, not {kind!r}")
    return Case(
        name=name,
        kind=kind,
        question=_text(raw, "question", where),
        expect=_expect(raw.get("expect"), f"{where}.expect"),
        before=_texts(raw["before"], f"{where}.before") if "before" in raw else (),
        script=_script(raw["script"], f"{where}.script") if "script" in raw else None,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{path}: not valid TOML ({exc})") from None


def _score_value(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise CaseError(f"{where}: must be a number from 0 to 1, not {value!r}")
    return float(value)


def parse_baseline(route: str, raw: Any, where: str) -> Baseline:
    """One ``[baselines.ROUTE]`` table: ``score`` (required) and ``model`` (the model it was measured on)."""
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: must be a table with score (and model)")
    _unknown(raw, {"score", "model"}, where)
    if "score" not in raw:
        raise CaseError(f"{where}.score: required, a number from 0 to 1")
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise CaseError(f"{where}.model: must be a non-empty string")
    return Baseline(route=route, score=_score_value(raw["score"], f"{where}.score"), model=model)


def load_baselines(path: str | Path = DATASET) -> dict[str, Baseline]:
    """The committed baselines of a quality file, by route; a file without ``[baselines]`` has none."""
    path = Path(path)
    raw = _read(path).get("baselines", {})
    if not isinstance(raw, dict):
        raise CaseError(f"{path}: baselines: must be a table of [baselines.ROUTE] tables")
    return {route: parse_baseline(route, table, f"{path}: baselines.{route}") for route, table in raw.items()}


def threshold_for(route: str, dataset: str | Path, given: float | None = None) -> MinScore | None:
    """What the run must reach: ``given``, else the route's baseline, else all of it on a scripted route."""
    if given is not None:
        return MinScore(_score_value(given, "--min-score"), "--min-score")
    baseline = load_baselines(dataset).get(route)
    if baseline is not None:
        measured = f" on {baseline.model}" if baseline.model else ""
        return MinScore(baseline.score, f"baseline of route {route!r}{measured} in {dataset}")
    # The scripted model replays the expected answers: anything short of every case is a broken harness.
    return MinScore(1.0, "the scripted model must pass every case") if route.startswith("scripted/") else None


def verdict(share: float | None, threshold: MinScore | None) -> tuple[bool, str]:
    """Whether a score passes its threshold, and a sentence that names both."""
    if share is None:
        return True, "no case ran: nothing to gate"
    if threshold is None:
        return True, f"score {share:.3f}: not gated (no --min-score, and no baseline for this route)"
    if share < threshold.score:
        return False, f"score {share:.3f} is below the minimum {threshold.score:.3f} ({threshold.source})"
    return True, f"score {share:.3f} reaches the minimum {threshold.score:.3f} ({threshold.source})"


def load_cases(path: str | Path = DATASET) -> list[Case]:
    """Every case of a quality file; a :class:`CaseError` names the first invalid case and field."""
    path = Path(path)
    data = _read(path)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise CaseError(f"{path}: no [[cases]]")
    cases = [parse_case(raw, f"{path}: case {number}") for number, raw in enumerate(raw_cases, start=1)]
    twice = [name for name, count in Counter(case.name for case in cases).items() if count > 1]
    if twice:
        raise CaseError(f"{path}: case name {twice[0]!r} is used more than once")
    return cases


# -- scoring ------------------------------------------------------------------------------------------------------


def _contains(answer: str, texts: Sequence[str]) -> list[str]:
    lowered = answer.lower()
    return [text for text in texts if text.lower() in lowered]


def score(expect: Expect, outcome: Outcome) -> list[Check]:
    """One check per expectation the case states, in the order of the file's documentation."""
    checks = []
    if expect.status:
        checks.append(
            Check("status", outcome.status in expect.status, f"expected {list(expect.status)}, got {outcome.status!r}")
        )
    if expect.escalation:
        waiting = list(outcome.escalations)
        checks.append(
            Check("escalation", expect.escalation in waiting, f"expected {expect.escalation!r}, got {waiting}")
        )
    if expect.tools:
        missing = [tool for tool in expect.tools if tool not in outcome.tools_ran]
        checks.append(Check("tools", not missing, f"missing {missing}, ran {list(outcome.tools_ran)}"))
    if expect.forbidden_tools:
        ran = [tool for tool in expect.forbidden_tools if tool in outcome.tools_ran]
        checks.append(Check("forbidden_tools", not ran, f"ran {ran}"))
    if expect.answer_contains:
        missing = sorted(set(expect.answer_contains) - set(_contains(outcome.answer, expect.answer_contains)))
        checks.append(Check("answer_contains", not missing, f"missing {missing}"))
    if expect.answer_contains_any:
        found = _contains(outcome.answer, expect.answer_contains_any)
        checks.append(Check("answer_contains_any", bool(found), f"found {found}"))
    if expect.answer_excludes:
        found = _contains(outcome.answer, expect.answer_excludes)
        checks.append(Check("answer_excludes", not found, f"found {found}"))
    return checks


# -- running ------------------------------------------------------------------------------------------------------


def _case_settings(base: Settings, case: Case, folder: Path, scripted: bool) -> Settings:
    update: dict[str, Any] = {"database_url": f"sqlite:///{folder / case.name}.db"}
    if scripted:
        path = folder / f"{case.name}.jsonl"
        path.write_text("".join(json.dumps(reply) + "\n" for reply in case.script or ()), encoding="utf-8")
        update["script"] = str(path)
    return base.model_copy(update=update)


def _tools_ran(agent: Agent, results: Sequence[RunResult]) -> tuple[str, ...]:
    # A resumed run keeps its run id, so a confirmation answered by the next message is counted once.
    run_ids = dict.fromkeys(result.run_id for result in results)
    return tuple(
        event.payload["tool"]
        for run_id in run_ids
        for event in agent.services.runs.events(run_id)
        if event.kind == "tool_result" and event.payload.get("status") == "success"
    )


async def ask_case(case: Case, base: Settings, folder: Path, route: str) -> Outcome:
    """Ask the case's conversation in one thread; the last turn is the one scored."""
    scripted = route.startswith("scripted/")
    async with Agent.open(_case_settings(base, case, folder, scripted)) as agent:
        results = [
            await agent.ask(text, thread_id=f"quality-{case.name}", route=route)
            for text in (*case.before, case.question)
        ]
        # A scripted case whose replies were not all used did something other than its script says: a failure.
        final = agent.settle_script(results[-1]) if scripted else results[-1]
        return Outcome(
            status=final.status,
            answer=final.answer or "",
            tools_ran=_tools_ran(agent, results),
            escalations=tuple(item["type"] for item in final.escalations),
            error=final.error,
        )


# Asked once before the cases and not scored: loading the model's weights and the embedder can take longer than
# a run's wall clock on a small machine, and would otherwise time out whichever case happens to come first.
# Its name cannot be a case name (no "-" allowed there), so its database never collides with a case.
WARM_UP = Case(name="warm-up", kind="tool", question="Hello.", expect=Expect(), script=({"text": "Hello."},))


async def warm_up(base: Settings, folder: Path, route: str) -> float:
    started = time.perf_counter()
    await ask_case(WARM_UP, base, folder, route)
    return round(time.perf_counter() - started, 2)


async def run_case(case: Case, base: Settings, folder: Path, route: str) -> Scenario:
    started = time.perf_counter()
    try:
        outcome = await ask_case(case, base, folder, route)
    except Exception as exc:  # one broken case (a model that crashes the run) must not hide the others' scores
        outcome = Outcome(status="error", answer="", tools_ran=(), escalations=(), error=f"{type(exc).__name__}: {exc}")
    checks = score(case.expect, outcome)
    passed = sum(check.passed for check in checks)
    figures = {
        "kind": case.kind,
        "score": round(passed / len(checks), 3),
        "status": outcome.status,
        "tools_ran": list(outcome.tools_ran),
        "answer": outcome.answer[:ANSWER_SHOWN],
        "failed_checks": {check.name: check.detail for check in checks if not check.passed},
        "seconds": round(time.perf_counter() - started, 2),
    }
    if outcome.error:
        figures["error"] = outcome.error
    return Scenario(case.name, passed == len(checks), figures)


def _share(scenarios: Sequence[Scenario]) -> float | None:
    return round(sum(s.passed for s in scenarios) / len(scenarios), 3) if scenarios else None


async def run_quality(
    base: Settings,
    *,
    route: str = SCRIPTED_ROUTE,
    dataset: str | Path = DATASET,
    folder: Path,
    min_score: float | None = None,
) -> dict[str, Any]:
    """Every case of ``dataset`` on ``route``; cases without a script are skipped on the scripted model.

    ``passed`` is false when the score is below ``min_score`` or, without it, the route's committed baseline.
    """
    cases = load_cases(dataset)
    threshold = threshold_for(route, dataset, min_score)  # read before the cases run: a bad baseline fails fast
    scripted = route.startswith("scripted/")
    runnable = [case for case in cases if case.script is not None or not scripted]
    warm_up_s = await warm_up(base, folder, route)
    scenarios = [await run_case(case, base, folder, route) for case in runnable]
    report = suite_report("quality", scenarios)
    by_kind = {kind: _share([s for s in scenarios if s.figures["kind"] == kind]) for kind in KINDS}
    # Judged unrounded: 1999 of 2000 cases must not round up to a scripted run's full score.
    passed, said = verdict(sum(s.passed for s in scenarios) / len(scenarios) if scenarios else None, threshold)
    return {
        **report,
        "passed": passed,
        "verdict": said,
        "min_score": threshold.score if threshold else None,
        "model": route,
        "dataset": str(dataset),
        "score": _share(scenarios),
        "score_by_kind": {kind: share for kind, share in by_kind.items() if share is not None},
        "check_score": round(sum(s.figures["score"] for s in scenarios) / len(scenarios), 3) if scenarios else None,
        "skipped": [case.name for case in cases if case not in runnable],
        "warm_up_s": warm_up_s,
    }


def main(
    config: str | Path | None = None,
    *,
    route: str | None = None,
    dataset: str | Path | None = None,
    min_score: float | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="firebreak-quality-") as folder:
        return asyncio.run(
            run_quality(
                load_settings(config),
                route=route or SCRIPTED_ROUTE,
                dataset=dataset or DATASET,
                folder=Path(folder),
                min_score=min_score,
            )
        )
