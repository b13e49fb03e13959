"""Tools: declared schemas, validation messages, budgets, the demo tools on a real database."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated

import pytest
from conftest import run
from pydantic import Field

from app.services import Services, build_services
from app.tools.registry import ToolContext, ToolRegistry, tool
from app.tools.runner import render_result, run_tool
from app.tools.timeouts import ToolBudgets
from core.errors import ConfigError, InvalidToolArguments, ToolFailed, ToolTimeout, UnknownTool
from examples.support_desk import tools as demo


@tool(kind="write", cost_class="db")
def rename_customer(order_id: Annotated[int, Field(ge=1)], name: str, ctx: ToolContext) -> str:
    """Rename the customer of an order.

    Longer explanation that the model does not need.
    """
    return f"{ctx.tenant_id}:{order_id}:{name}"


STUCK_FINISHED = threading.Event()


@tool(cost_class="external_api", timeout_s=0.2)
def stuck() -> str:
    """Ignores cancellation: a sync call that sleeps far past its budget."""
    time.sleep(3)
    STUCK_FINISHED.set()
    return "too late"


@dataclass
class Harness:
    """A tool call the way ``act`` makes it: real services, a real database."""

    services: Services

    @property
    def context(self) -> ToolContext:
        return ToolContext(
            run_id="r1", tenant_id="acme", user_id="u1", engine=self.services.engine, settings=self.services.settings
        )


def harness_for(settings) -> Harness:
    return Harness(build_services(settings))


@pytest.fixture
def context(make_settings, database_url) -> Harness:
    """Tools on a real database, one attempt per call (retries have their own tests)."""
    return harness_for(make_settings(database_url, retries={"attempts": 1}))


def call(item, arguments, harness: Harness, timeout_s=5.0, max_chars=8000, op_id=None):
    """One call; write tools get a fresh op_id unless the test names one."""
    return run(
        run_tool(
            item,
            arguments,
            replace(harness.context, op_id=op_id or uuid.uuid4().hex),
            timeout_s=timeout_s,
            runtime=replace(harness.services.tool_runtime, max_result_chars=max_chars),
        )
    )


def test_the_schema_comes_from_the_signature_and_hides_the_context():
    spec = rename_customer.spec()["function"]

    assert spec["name"] == "rename_customer"
    assert spec["description"] == "Rename the customer of an order."
    assert spec["parameters"]["required"] == ["order_id", "name"]
    assert set(spec["parameters"]["properties"]) == {"order_id", "name"}
    assert rename_customer.kind == "write"


def test_valid_arguments_reach_the_function_with_the_context(context):
    assert call(rename_customer, '{"order_id": 3, "name": "Ada"}', context) == "acme:3:Ada"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"order_id": 0, "name": "Ada"}', "order_id: Input should be greater than or equal to 1"),
        ('{"name": "Ada"}', "order_id: Field required"),
        ('{"order_id": 1, "name": "Ada", "admin": true}', "admin: Extra inputs are not permitted"),
        ('{"order_id": 1,', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_invalid_arguments_say_what_to_fix(context, arguments, message):
    with pytest.raises(InvalidToolArguments, match=message.replace("(", r"\(")):
        call(rename_customer, arguments, context)


def test_a_sync_tool_that_ignores_cancellation_is_abandoned_at_its_budget(context):
    with pytest.raises(ToolTimeout, match=r"did not finish within 0\.2s"):
        call(stuck, {}, context, timeout_s=0.2)
    # The run got its answer (and its event loop closed) while the tool was still sleeping.
    assert not STUCK_FINISHED.is_set()


def test_run_code_returns_what_the_program_printed(context):
    result = json.loads(call(demo.run_code, {"code": "print(6 * 7)"}, context))

    assert (result["exit_code"], result["stdout"].strip()) == (0, "42")


def test_run_code_writes_only_inside_its_own_temporary_directory(context, tmp_path):
    outside = tmp_path / "escaped.txt"
    code = f"open('mine.txt', 'w').write('ok')\nprint(open('mine.txt').read())\nopen({str(outside)!r}, 'w')"
    result = json.loads(call(demo.run_code, {"code": code}, context))

    assert result["stdout"].strip() == "ok"
    assert result["exit_code"] != 0 and "only write inside its working directory" in result["stderr"]
    assert not outside.exists()


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=1)", "socket."),
        ("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:5432', timeout=1)", "socket."),
        ("import subprocess\nsubprocess.run(['ls'])", "subprocess.Popen"),
        ("import os\nos.system('ls')", "os.system"),
        ("import ctypes\nctypes.CDLL(None)", "ctypes."),
    ],
)
def test_run_code_has_no_network_no_processes_and_no_native_code(context, code, refused):
    result = json.loads(call(demo.run_code, {"code": code}, context))

    assert result["exit_code"] != 0
    assert f"run_code may not use {refused}" in result["stderr"]


def test_run_code_that_hangs_is_killed_at_the_deadline(context):
    with pytest.raises(ToolTimeout):
        call(demo.run_code, {"code": "while True:\n    pass"}, context, timeout_s=1.5)

    time.sleep(0.3)
    # Its command line names its program, in a "firebreak-code-" temporary directory.
    survivors = subprocess.run(["pgrep", "-f", "firebreak-code-"], capture_output=True, text=True, check=False)
    assert survivors.stdout == ""


def test_a_tool_that_raises_becomes_a_tool_failure(context):
    with pytest.raises(ToolFailed, match="order 999 does not exist"):
        call(demo.update_order, {"order_id": 999, "status": "shipped"}, context)


def test_huge_results_are_cut_with_a_visible_marker():
    text = render_result("x" * 10_000, max_chars=100)
    assert text.startswith("x" * 100) and "[truncated: 10000 characters" in text


def test_knowledge_search_finds_the_refund_article(context):
    hits = json.loads(call(demo.knowledge_search, {"query": "How do I get a refund?"}, context))
    assert hits[0]["article"] == "refunds.md"


@pytest.fixture
def partner_api() -> str:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, {"sku": 42, "price_usd": 19.5}) if self.path == "/prices/42" else (404, {})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_api_calls_the_configured_partner(make_settings, sqlite_url, partner_api):
    context = harness_for(make_settings(sqlite_url, tools={"http_api": {"base_url": partner_api}}))

    assert json.loads(call(demo.http_api, {"path": "/prices/42"}, context))["body"]["price_usd"] == 19.5
    with pytest.raises(ToolFailed, match="HTTP 404"):
        call(demo.http_api, {"path": "/prices/7"}, context)


def test_budgets_follow_tool_override_then_decorator_then_cost_class():
    budgets = ToolBudgets(class_timeouts_s={"db": 0.15, "external_api": 1.5}, tool_timeouts_s={"stuck": 3.0})

    assert budgets.timeout_for(stuck) == 3.0
    assert budgets.timeout_for(rename_customer) == 0.15
    assert ToolBudgets({"external_api": 1.5}, {}).timeout_for(stuck) == 0.2


def test_registry_rejects_unknown_and_duplicate_tools():
    registry = ToolRegistry.from_modules(["examples.support_desk.tools"])

    assert {item.name for item in registry} == {
        "knowledge_search",
        "sql_lookup",
        "sales_data",
        "pricing_api",
        "cached_prices",
        "update_order",
        "send_email",
        "run_code",
        "http_api",
    }
    with pytest.raises(UnknownTool, match="available tools: cached_prices, http_api, knowledge_search"):
        registry.get("rm_rf")
    with pytest.raises(ConfigError, match="two tools are named 'sql_lookup'"):
        registry.add(demo.sql_lookup)
    with pytest.raises(ConfigError, match=r"cannot import 'no\.such\.module'"):
        ToolRegistry.from_modules(["no.such.module"])


def test_a_substitute_that_is_not_a_registered_tool_is_a_configuration_error(tmp_path, monkeypatch):
    (tmp_path / "flaky_tools.py").write_text(
        "from app.tools.registry import tool\n\n\n"
        "@tool(kind='read', substitute='yesterdays_rates')\n"
        "def live_rates(currency: str) -> dict:\n"
        '    """Live exchange rates."""\n'
        "    return {}\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ConfigError, match="live_rates: its substitute 'yesterdays_rates' is not among the tools"):
        ToolRegistry.from_modules(["flaky_tools"])
