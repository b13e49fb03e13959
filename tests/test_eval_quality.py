"""``firebreak eval quality`` and ``firebreak eval all``: the task cases, their file format and the report.

The full ``eval all`` (worker kills, minutes of simulated canary traffic) runs with ``make eval``; here the
aggregator runs two of the suites (containment and quality) through the real command, into a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run

from core.config import load_settings
from evals.all import cache_scenarios, embedded_quality_suite, frozen_quality_suite
from evals.cache_suite import main as run_cache_eval
from evals.quality import (
    DATASET,
    FROZEN_TEST,
    FROZEN_TEST_SHA256,
    KINDS,
    CaseError,
    load_baselines,
    load_cases,
    run_quality,
    threshold_for,
)
from evals.scenario import file_sha256

pytestmark = pytest.mark.slow

FIREBREAK = str(Path(sys.executable).parent / "firebreak")
ORDER_42 = """
[[cases]]
name = "order_status"
kind = "tool"
question = "Where is order 42?"
expect = { status = "answered", tools = ["sql_lookup"], answer_contains = %s }
script = [
    { tool_calls = [{ name = "sql_lookup", arguments = { order_id = 42 } }] },
    { text = "Order 42 was delivered." },
]
"""


def firebreak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIREBREAK, *args], capture_output=True, text=True, timeout=280, check=False, cwd=cwd, env=os.environ
    )


# Order 42's case and one whose answer misses "refunded": one case of two passes, a score of 0.5.
HALF_PASSING = ORDER_42 % '["delivered"]' + ORDER_42.replace('"order_status"', '"order_refunded"') % '["refunded"]'


def subfolder(tmp_path: Path, name: str) -> Path:
    """A folder of its own for one run of the suite: each run's case databases start fresh."""
    path = tmp_path / name
    path.mkdir()
    return path


def cases_file(folder: Path, text: str) -> Path:
    path = folder / "cases.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def eval_all(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("reports")
    done = firebreak(
        "eval", "all", "--suite", "containment", "--suite", "quality", "--out", str(folder), "--json", cwd=folder
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return json.loads(done.stdout), folder, done


# -- the shipped cases on the scripted model -------------------------------------------------------------------


def test_the_shipped_dataset_has_at_least_ten_cases_of_every_kind_each_with_a_script():
    cases = load_cases(DATASET)

    assert len(cases) >= 10
    assert {case.kind for case in cases} == set(KINDS)
    assert all(case.script is not None for case in cases)  # so CI's scripted run skips none


def test_the_scripted_quality_suite_passes_every_case(eval_all):
    summary, _, _ = eval_all
    [quality] = [report for report in summary["suites"] if report["suite"] == "quality"]

    assert quality["model"] == "scripted/quality"
    assert quality["skipped"] == []
    assert [case["name"] for case in quality["scenarios"] if not case["passed"]] == []
    assert quality["score"] == 1.0 and quality["passed"] is True
    assert quality["min_score"] == 1.0  # the scripted model's committed baseline is its full score
    assert quality["verdict"].startswith("score 1.000 reaches the minimum 1.000 (baseline of route 'scripted/quality'")
    assert quality["score_by_kind"] == dict.fromkeys(KINDS, 1.0)
    assert len(quality["scenarios"]) == len(load_cases(DATASET))


def test_a_case_whose_answer_misses_an_expected_text_fails_and_names_the_check(tmp_path):
    dataset = cases_file(tmp_path, ORDER_42 % '["delivered", "refunded"]')
    report = run(run_quality(load_settings(), dataset=dataset, folder=tmp_path))

    [case] = report["scenarios"]
    assert (case["passed"], case["status"], case["tools_ran"]) == (False, "answered", ["sql_lookup"])
    assert case["failed_checks"] == {"answer_contains": "missing ['refunded']"}
    assert case["score"] == round(2 / 3, 3)  # status and tools held
    assert (report["passed"], report["score"]) == (False, 0.0)


def test_a_scripted_case_that_leaves_replies_unused_fails_on_its_status(tmp_path):
    dataset = cases_file(
        tmp_path, ORDER_42.replace('{ text = "Order 42 was delivered." },', '{ text = "a" }, { text = "b" },') % '["a"]'
    )
    report = run(run_quality(load_settings(), dataset=dataset, folder=tmp_path))

    [case] = report["scenarios"]
    assert case["passed"] is False and case["status"] == "failed"
    assert "status" in case["failed_checks"]


def test_a_case_without_a_script_is_skipped_on_the_scripted_model_and_said_so(tmp_path):
    no_script = (
        '\n[[cases]]\nname = "for_real_models"\nkind = "tool"\nquestion = "Hi"\nexpect = { status = "answered" }\n'
    )
    dataset = cases_file(tmp_path, ORDER_42 % '["delivered"]' + no_script)
    report = run(run_quality(load_settings(), dataset=dataset, folder=tmp_path))

    assert report["skipped"] == ["for_real_models"]
    assert [case["name"] for case in report["scenarios"]] == ["order_status"]
    assert report["passed"] is True


# -- the minimum score: --min-score, else the route's committed baseline -----------------------------------------


def test_the_shipped_dataset_commits_a_baseline_for_the_embedded_model_and_the_full_score_for_the_scripted_one():
    baselines = load_baselines(DATASET)

    assert baselines["scripted/quality"].score == 1.0
    assert baselines["chat"].model == "local/qwen2.5-coder-0.5b-instruct"
    assert 0 < baselines["chat"].score < 1
    assert threshold_for("chat", DATASET).score == baselines["chat"].score  # type: ignore[union-attr]
    assert threshold_for("chat", DATASET, 0.9).score == 0.9  # type: ignore[union-attr]


def test_a_score_below_the_min_score_fails_with_a_verdict_naming_the_score_and_the_threshold(tmp_path):
    dataset = cases_file(tmp_path, HALF_PASSING)

    below = run(run_quality(load_settings(), dataset=dataset, folder=subfolder(tmp_path, "a"), min_score=0.75))
    reached = run(run_quality(load_settings(), dataset=dataset, folder=subfolder(tmp_path, "b"), min_score=0.5))

    assert (below["score"], below["passed"], below["min_score"]) == (0.5, False, 0.75)
    assert below["verdict"] == "score 0.500 is below the minimum 0.750 (--min-score)"
    assert (reached["passed"], reached["verdict"]) == (True, "score 0.500 reaches the minimum 0.500 (--min-score)")


def test_without_min_score_the_routes_baseline_in_the_dataset_is_the_threshold(tmp_path):
    baseline = '\n[baselines."scripted/quality"]\nscore = 0.5\nmodel = "the script"\n'
    dataset = cases_file(tmp_path, HALF_PASSING + baseline)

    report = run(run_quality(load_settings(), dataset=dataset, folder=subfolder(tmp_path, "a")))
    stricter = run(run_quality(load_settings(), dataset=dataset, folder=subfolder(tmp_path, "b"), min_score=0.6))

    assert (report["passed"], report["min_score"]) == (True, 0.5)
    assert report["verdict"] == (
        f"score 0.500 reaches the minimum 0.500 (baseline of route 'scripted/quality' on the script in {dataset})"
    )
    assert (stricter["passed"], stricter["min_score"]) == (False, 0.6)  # the flag wins over the file


def test_a_scripted_route_without_a_baseline_must_pass_every_case_and_a_real_route_without_one_is_not_gated(tmp_path):
    dataset = cases_file(tmp_path, HALF_PASSING)

    assert threshold_for("scripted/quality", dataset).score == 1.0  # type: ignore[union-attr]
    assert threshold_for("chat", dataset) is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[baselines.chat]\nscore = 1.5", r"baselines\.chat\.score: must be a number from 0 to 1, not 1\.5"),
        ('[baselines.chat]\nmodel = "m"', r"baselines\.chat\.score: required"),
        ("[baselines.chat]\nscore = 0.5\nmin = 0.4", r"baselines\.chat: unknown field 'min'"),
        ("baselines = 0.5", r"baselines: must be a table"),
    ],
)
def test_a_malformed_baseline_is_an_error_before_any_case_runs(tmp_path, table, message):
    dataset = cases_file(tmp_path, table + "\n" + ORDER_42 % '["delivered"]')

    with pytest.raises(CaseError, match=message):
        run(run_quality(load_settings(), route="chat", dataset=dataset, folder=tmp_path))


def test_the_command_exits_1_below_the_min_score_and_says_why(tmp_path):
    dataset = cases_file(tmp_path, HALF_PASSING)
    done = firebreak("eval", "quality", "--dataset", str(dataset), "--min-score", "0.75", "--json", cwd=tmp_path)

    assert done.returncode == 1
    assert json.loads(done.stdout)["passed"] is False
    assert "score 0.500 is below the minimum 0.750 (--min-score)" in done.stderr


# -- a malformed file names the case and the field ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            'name = "x"\nkind = "chat"\nquestion = "Hi"\nexpect = { status = "answered" }',
            r"case 2 \('x'\)\.kind: must be one of",
        ),
        ('name = "x"\nkind = "tool"\nexpect = { status = "answered" }', r"case 2 \('x'\)\.question: required"),
        ('name = "x"\nkind = "tool"\nquestion = "Hi"', r"case 2 \('x'\)\.expect: required"),
        (
            'name = "x"\nkind = "tool"\nquestion = "Hi"\nexpect = { status = 3 }',
            r"case 2 \('x'\)\.expect\.status: must be",
        ),
        (
            'name = "x"\nkind = "tool"\nquestion = "Hi"\nexpect = { tool = ["a"] }',
            r"case 2 \('x'\)\.expect: unknown field 'tool'",
        ),
        (
            'name = "x"\nkind = "tool"\nquestion = "Hi"\nexpect = { escalation = "manager" }',
            r"\.expect\.escalation: must be",
        ),
        (
            'name = "x"\nkind = "tool"\nquestion = "Hi"\nexpect = { status = "answered" }\nscript = [{ txt = "a" }]',
            r"case 2 \('x'\)\.script\[1\]: unknown keys \['txt'\]",
        ),
        (
            'name = "x"\nkind = "tool"\nquestion = "Hi"\nexpect = { status = "answered" }\nmodel = "chat"',
            r"case 2 \('x'\): unknown field 'model'",
        ),
        (
            'name = "order_status"\nkind = "tool"\nquestion = "Hi"\nexpect = { status = "answered" }',
            r"case name 'order_status' is used more than once",
        ),
        ('kind = "tool"\nquestion = "Hi"\nexpect = { status = "answered" }', r"case 2\.name: required"),
    ],
)
def test_a_malformed_case_is_an_error_naming_the_case_and_the_field(tmp_path, case, message):
    path = cases_file(tmp_path, ORDER_42 % '["delivered"]' + "\n[[cases]]\n" + case + "\n")

    with pytest.raises(CaseError, match=message) as raised:
        load_cases(path)
    assert str(raised.value).startswith(str(path))


def test_the_command_reports_a_malformed_file_in_one_line_without_running_anything(tmp_path):
    path = cases_file(
        tmp_path, '[[cases]]\nname = "x"\nkind = "chat"\nquestion = "Hi"\nexpect = { status = "answered" }\n'
    )
    done = firebreak("eval", "quality", "--dataset", str(path), cwd=tmp_path)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: {path}: case 1 ('x').kind: must be one of {list(KINDS)}, not 'chat'"
    )


# -- the aggregator and its report ----------------------------------------------------------------------------------


def test_eval_all_writes_json_markdown_and_a_plot_per_suite_into_the_folder_it_is_given(eval_all):
    summary, folder, done = eval_all

    assert sorted(path.name for path in folder.iterdir()) == [
        "containment.png", "latest.json", "latest.md", "quality.png", "summary.png"
    ]  # fmt: skip
    assert json.loads((folder / "latest.json").read_text()) == summary
    assert [report["suite"] for report in summary["suites"]] == ["containment", "quality"]
    assert summary["passed"] is True and all(report["seconds"] > 0 for report in summary["suites"])
    assert all((folder / name).read_bytes().startswith(b"\x89PNG") for name in ("summary.png", "containment.png"))
    assert f"report: {folder / 'latest.md'}" in done.stderr


def test_the_markdown_embeds_the_plots_and_lists_every_scenario_with_its_key_figure(eval_all):
    summary, folder, _ = eval_all
    markdown = (folder / "latest.md").read_text()

    assert re.findall(r"!\[[a-z]+\]\(([a-z]+\.png)\)", markdown) == ["summary.png", "containment.png", "quality.png"]
    for report in summary["suites"]:
        assert f"## {report['suite']}: pass" in markdown
        for scenario in report["scenarios"]:
            assert f"| {scenario['name']} | pass |" in markdown
    assert "| production_mutation | pass | unapproved_writes = 0 (≤ 0) |" in markdown
    assert "| order_status | pass | score = 1 (≥ 1) |" in markdown


def test_eval_all_scores_the_cases_on_the_embedded_model_too_gated_by_its_baseline(tmp_path):
    # One case the embedded model answers and one no model can pass (its answer must hold a made-up word).
    dataset = cases_file(
        tmp_path,
        """
        [baselines.chat]
        score = 0.5

        [[cases]]
        name = "capital"
        kind = "answer"
        question = "What is the capital of France?"
        expect = { status = "answered", answer_contains = ["Paris"] }

        [[cases]]
        name = "unreachable"
        kind = "answer"
        question = "What is the capital of Italy?"
        expect = { status = "answered", answer_contains = ["zqxv-never-said"] }
        """,
    )

    report = embedded_quality_suite(dataset)

    assert (report["suite"], report["model"]) == ("quality_embedded", "chat")
    assert [(s["name"], s["passed"]) for s in report["scenarios"]] == [("capital", True), ("unreachable", False)]
    assert (report["score"], report["passed"]) == (0.5, True)
    assert f"baseline of route 'chat' in {dataset}" in report["verdict"]


def test_the_frozen_test_split_is_the_pinned_file_with_cases_the_scripted_suite_never_runs():
    cases = load_cases(FROZEN_TEST)

    assert file_sha256(FROZEN_TEST) == FROZEN_TEST_SHA256
    assert {case.kind for case in cases} == set(KINDS)
    assert all(case.script is None for case in cases)
    assert not {case.question for case in cases} & {case.question for case in load_cases(DATASET)}
    assert 0 < load_baselines(FROZEN_TEST)["chat"].score < 1


def test_a_changed_frozen_test_split_fails_its_suite_whatever_the_score(tmp_path):
    changed = tmp_path / "quality_test.toml"
    changed.write_text(
        FROZEN_TEST.read_text().split("[[cases]]")[0]
        + '[[cases]]\nname = "capital"\nkind = "answer"\nquestion = "What is the capital of France?"\n'
        + 'expect = { status = "answered", answer_contains = ["Paris"] }\n'
    )

    report = frozen_quality_suite(changed)

    assert report["scenarios"][0] == {"name": "test_split_frozen", "passed": False, "sha256": file_sha256(changed)}
    assert (report["score"], report["passed"]) == (1.0, False)


def test_eval_all_refuses_an_unknown_suite_before_running_any(tmp_path):
    done = firebreak("eval", "all", "--suite", "quality", "--suite", "speed", "--out", str(tmp_path), cwd=tmp_path)

    assert done.returncode == 1
    assert "unknown suite 'speed'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_cache_eval_reads_as_scenarios_with_the_same_verdict(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"cached": "What's the refund policy?", "query": "How do I get a refund?", "same": True},
        {"cached": "Can I return a used item?", "query": "Can I return an unused item?", "same": False},
        {"cached": "Refund policy?", "query": "Refund policy?", "same": False, "cached_tenant": "a", "tenant": "b"},
    ]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = run_cache_eval(load_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"), pairs)

    scenarios = cache_scenarios(report)
    assert [s.name for s in scenarios] == [
        "precision_at_default_thresholds",
        "recall_at_default_thresholds",
        "no_cross_tenant_hits",
        "eval_agrees_with_cache",
    ]
    assert all(s.passed for s in scenarios) == report["passed"]
    assert scenarios[2].figures == {"hits": 0, "probes": 1}


def test_the_readme_case_example_loads_and_passes_as_written(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Evals", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    report = run(run_quality(load_settings(), dataset=cases_file(tmp_path, example), folder=tmp_path))

    assert [(case["name"], case["passed"]) for case in report["scenarios"]] == [("order_status", True)]
