"""docs/patterns.md maps the seed's fifteen patterns to the code; these checks keep it from drifting.

Every pattern is there with the seed's number and name, and everything it cites still exists: files, tests
(``def test_name`` in the file), ``firebreak.toml`` keys, tables, span names and attributes, CLI commands
(``--help`` exits 0) and UI tab labels. Each check is also shown failing on a planted mistake.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "patterns.md"
SEED = ROOT.parent / "shared" / "seed" / "production-agent-patterns.txt"
# The seed's numbers and names, as its headings spell them (checked against the seed file when it is present).
SEED_PATTERNS = {
    1: "Agent Circuit Breaker",
    2: "Tool Invocation Timeout",
    3: "Idempotent Tool Calls",
    4: "Dead Letter Queue for Failed Runs",
    5: "Blast Radius Limiter",
    6: "Confidence Threshold Gate",
    7: "Human Escalation Protocol",
    8: "Orchestration vs Choreography",
    9: "LLM Gateway",
    10: "Semantic Caching",
    11: "Context Window Checkpointing",
    12: "Multi-Agent State Sync",
    13: "Replanning Loop",
    14: "Canary Agent Deployment",
    15: "Agentic Observability Tracing",
}
FIELDS = ("Files", "Config", "Spans", "Tables", "CLI", "UI tabs", "Tests")
# Where spans, their attributes and events are named.
SPAN_PACKAGES = ("core", "memory", "app", "graph", "nodes")
HEADING = re.compile(r"^## (\d+)\. (.+?)\s*$", re.MULTILINE)
FIELD_LINE = re.compile(r"^- \*\*(.+?):\*\* (.*)$", re.MULTILINE)
ITEM = re.compile(r"`([^`]+)`")
CONFIG_ITEM = re.compile(r"^\[([^\]]+)\](?: (\S+))?$")
SECTION_PART = re.compile(r'"[^"]*"|[^."]+')


@dataclass
class Section:
    """One pattern's section: its heading, and the backticked items of each ``- **Field:**`` line."""

    number: int
    name: str
    fields: dict[str, list[str]] = field(default_factory=dict)


def parse(text: str) -> list[Section]:
    """The sections of a patterns page, in order."""
    headings = list(HEADING.finditer(text))
    sections = []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        body = text[heading.end() : following.start() if following else len(text)]
        fields = {line.group(1): ITEM.findall(line.group(2)) for line in FIELD_LINE.finditer(body)}
        sections.append(Section(int(heading.group(1)), heading.group(2), fields))
    return sections


def section_problems(sections: list[Section]) -> list[str]:
    """Every seed pattern once, in seed order, with its number and name, and every field filled in."""
    problems = []
    found = [(s.number, s.name) for s in sections]
    if found != list(SEED_PATTERNS.items()):
        problems.append(f"the sections are {found}, not the seed's {list(SEED_PATTERNS.items())}")
    for section in sections:
        for name in FIELDS:
            if not section.fields.get(name):
                problems.append(f"pattern {section.number} cites no {name}")
    return problems


def cited(sections: list[Section], name: str) -> list[tuple[int, str]]:
    """(pattern number, item) of every item a field cites."""
    return [(s.number, item) for s in sections for item in s.fields.get(name, [])]


def file_problems(sections: list[Section], root: Path = ROOT) -> list[str]:
    return [f"pattern {n}: no file {path}" for n, path in cited(sections, "Files") if not (root / path).is_file()]


def cited_test_problems(sections: list[Section], root: Path = ROOT) -> list[str]:
    problems = []
    for number, reference in cited(sections, "Tests"):
        path, _, name = reference.partition("::")
        name = re.sub(r"\[.*\]$", "", name.rsplit("::", 1)[-1])  # a parametrized id, or a class prefix
        source = root / path
        if not source.is_file():
            problems.append(f"pattern {number}: no test file {path}")
        elif not re.search(rf"^\s*(?:async )?def {re.escape(name)}\(", source.read_text(), re.MULTILINE):
            problems.append(f"pattern {number}: no test {name} in {path}")
    return problems


def config_problems(sections: list[Section], config: dict[str, Any]) -> list[str]:
    problems = []
    for number, item in cited(sections, "Config"):
        match = CONFIG_ITEM.match(item)
        if match is None:
            problems.append(f"pattern {number}: {item!r} is not `[section] key`")
            continue
        table: Any = config
        for part in SECTION_PART.findall(match.group(1)):
            table = table.get(part.strip('"')) if isinstance(table, dict) else None
        if not isinstance(table, dict):
            problems.append(f"pattern {number}: firebreak.toml has no section [{match.group(1)}]")
        elif match.group(2) is not None and match.group(2) not in table:
            problems.append(f"pattern {number}: firebreak.toml has no key {match.group(2)} in [{match.group(1)}]")
    return problems


def table_problems(sections: list[Section], root: Path = ROOT) -> list[str]:
    models = "".join(path.read_text() for path in sorted((root / "memory").rglob("*.py")))
    return [
        f"pattern {number}: no table {name}"
        for number, name in cited(sections, "Tables")
        if f'__tablename__ = "{name}"' not in models
    ]


def span_problems(sections: list[Section], root: Path = ROOT) -> list[str]:
    """Span names and attributes are string literals in the product (``f"chat {model}"`` names ``chat {model}``);
    ``node X`` is the span of the graph node X (``graph/builder.py`` names the nodes)."""
    sources = "".join(path.read_text() for package in SPAN_PACKAGES for path in sorted((root / package).rglob("*.py")))
    builder = (root / "graph" / "builder.py").read_text()
    problems = []
    for number, name in cited(sections, "Spans"):
        node = name.removeprefix("node ")
        if node != name and node != "{name}":
            known = '"node {name}"' in sources and f'("{node}",' in builder
        else:
            known = f'"{name}"' in sources
        if not known:
            problems.append(f"pattern {number}: no span or attribute {name}")
    return problems


def cli_problems(sections: list[Section]) -> list[str]:
    from cli.main import cli

    problems = []
    for number, command in cited(sections, "CLI"):
        program, *words = command.split()
        if program != "firebreak":
            problems.append(f"pattern {number}: {command!r} is not a firebreak command")
            continue
        result = CliRunner().invoke(cli, [*words, "--help"])
        if result.exit_code != 0:
            problems.append(f"pattern {number}: `{command} --help` exits {result.exit_code}")
    return problems


def ui_problems(sections: list[Section], root: Path = ROOT) -> list[str]:
    sources = "".join(path.read_text() for path in sorted((root / "ui").rglob("*.py")))
    return [
        f"pattern {number}: no UI tab labelled {label!r}"
        for number, label in cited(sections, "UI tabs")
        if f'"{label}"' not in sources
    ]


@cache
def sections() -> list[Section]:
    return parse(DOC.read_text(encoding="utf-8"))


@cache
def config() -> dict[str, Any]:
    return tomllib.loads((ROOT / "firebreak.toml").read_text(encoding="utf-8"))


def one(name: str, item: str) -> list[Section]:
    """A page of one pattern citing one item: a planted mistake."""
    return [Section(1, SEED_PATTERNS[1], {name: [item]})]


def test_the_seed_numbers_and_names_its_patterns_as_this_test_does() -> None:
    if not SEED.is_file():
        pytest.skip(f"the seed is not at {SEED}")
    seed = {int(m.group(1)): m.group(2).strip() for m in re.finditer(r"^(\d+)\. (.+)$", SEED.read_text(), re.M)}
    assert seed == SEED_PATTERNS


def test_every_pattern_is_there_in_seed_order_with_every_field() -> None:
    assert section_problems(sections()) == []


def test_every_cited_file_exists() -> None:
    assert file_problems(sections()) == []


def test_every_cited_test_exists() -> None:
    assert cited_test_problems(sections()) == []


def test_every_cited_config_key_is_in_firebreak_toml() -> None:
    assert config_problems(sections(), config()) == []


def test_every_cited_table_exists() -> None:
    assert table_problems(sections()) == []


def test_every_cited_span_and_attribute_is_named_in_the_code() -> None:
    assert span_problems(sections()) == []


def test_every_cited_cli_command_exists() -> None:
    assert cli_problems(sections()) == []


def test_every_cited_ui_tab_is_labelled_in_the_ui() -> None:
    assert ui_problems(sections()) == []


def test_a_parsed_section_has_its_heading_and_backticked_items() -> None:
    page = "## 3. Idempotent Tool Calls\n\nProse, `code`.\n\n- **Files:** `a.py`, `b/c.py`\n- **CLI:** `firebreak x`\n"
    assert parse(page) == [Section(3, "Idempotent Tool Calls", {"Files": ["a.py", "b/c.py"], "CLI": ["firebreak x"]})]


def test_a_missing_misnamed_or_empty_pattern_is_found() -> None:
    page = [Section(1, "Circuit Breaker", {name: ["x"] for name in FIELDS if name != "Tests"})]
    problems = section_problems(page)
    assert problems[0].startswith("the sections are [(1, 'Circuit Breaker')]")
    assert problems[1:] == ["pattern 1 cites no Tests"]


@pytest.mark.parametrize(
    ("name", "item", "problem"),
    [
        ("Files", "app/no_such_module.py", "pattern 1: no file app/no_such_module.py"),
        ("Tests", "tests/test_no_such_file.py::test_x", "pattern 1: no test file tests/test_no_such_file.py"),
        ("Tests", "tests/test_breaker.py::test_no_such_test[a-b]", "pattern 1: no test test_no_such_test in"),
        ("Tables", "no_such_table", "pattern 1: no table no_such_table"),
        ("Spans", "chat {provider}", "pattern 1: no span or attribute chat {provider}"),
        ("Spans", "node no_such_node", "pattern 1: no span or attribute node no_such_node"),
        ("Spans", "firebreak.breaker.no_such_event", "pattern 1: no span or attribute firebreak.breaker.no_such"),
        ("UI tabs", "No Such Tab", "pattern 1: no UI tab labelled 'No Such Tab'"),
    ],
)
def test_a_planted_missing_citation_is_found(name: str, item: str, problem: str) -> None:
    check = {"Files": file_problems, "Tests": cited_test_problems, "Tables": table_problems}
    check |= {"Spans": span_problems, "UI tabs": ui_problems}
    problems = check[name](one(name, item))
    assert len(problems) == 1 and problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("[breakers] no_such_key", "firebreak.toml has no key no_such_key in [breakers]"),
        ("[limits.week] tokens", "firebreak.toml has no section [limits.week]"),
        ('[models."no/such-model"] context_window', 'firebreak.toml has no section [models."no/such-model"]'),
        ("breakers.window_s", "'breakers.window_s' is not `[section] key`"),
    ],
)
def test_a_planted_missing_config_key_is_found(item: str, problem: str) -> None:
    assert config_problems(one("Config", item), config()) == [f"pattern 1: {problem}"]


def test_dotted_and_quoted_sections_resolve() -> None:
    keys = ["[limits.request] tokens", '[models."local/qwen2.5-coder-0.5b-instruct"] context_window', "[faults]"]
    assert config_problems([Section(1, "x", {"Config": keys})], config()) == []


def test_a_planted_missing_cli_command_is_found() -> None:
    assert cli_problems(one("CLI", "firebreak no-such-command")) == [
        "pattern 1: `firebreak no-such-command --help` exits 2"
    ]
    assert cli_problems(one("CLI", "make run")) == ["pattern 1: 'make run' is not a firebreak command"]
