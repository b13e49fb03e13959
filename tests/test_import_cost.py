"""Commands that never call a model never import the model stacks.

Importing LiteLLM alone took about 7 s, and every ``firebreak`` process paid it (with more) before it
printed anything: ``dlq list`` took 10 s or more. The gateway now imports LiteLLM when it first builds a
router, the semantic cache loads sentence-transformers (torch) on its first lookup, and the UI's Gradio
only loads in ``firebreak ui``. These tests check what a fresh process has loaded (``sys.modules``), not
how long it took: timings on a shared CI machine are too noisy to assert on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("litellm", "torch", "gradio", "sentence_transformers", "transformers", "llama_cpp", "scipy", "matplotlib")
READ_ONLY_COMMANDS = [
    ["--help"],
    ["dlq", "list"],
    ["canary", "status"],
    ["budgets"],
    ["runs"],
    ["ops"],
    ["breakers"],
    ["escalations", "show", "no-such-escalation"],
    ["trace", "show", "no-such-run"],
]
ROOT = Path(__file__).resolve().parent.parent


def loaded_in_fresh_process(code: str, database_url: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter; it prints one JSON object, which this returns."""
    env = {**os.environ, "FIREBREAK_DATABASE_URL": database_url}
    for leaked in ("FIREBREAK_SCRIPT", "FIREBREAK_CONFIG"):
        env.pop(leaked, None)
    prelude = f"import json, sys\nHEAVY = {HEAVY!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_and_building_the_services_loads_no_model_stack(tmp_path):
    found = loaded_in_fresh_process(
        """
        import cli.main
        from core.config import load_settings
        from app.services import build_services

        services = build_services(load_settings())  # what `firebreak canary status` builds
        gateway_ready = services.gateway is not None and services.cache is not None
        services.close()
        print(json.dumps({
            "heavy": sorted(name for name in HEAVY if name in sys.modules),
            "built": gateway_ready and "app.services" in sys.modules and "sqlalchemy" in sys.modules,
        }))
        """,
        f"sqlite:///{tmp_path / 'services.db'}",
    )

    assert found["built"] is True  # the check looked at a process that really built everything
    assert found["heavy"] == []


def test_read_only_commands_load_no_model_stack(tmp_path):
    found = loaded_in_fresh_process(
        f"""
        import contextlib, io
        from cli.main import main

        outcomes = []
        for args in {READ_ONLY_COMMANDS!r}:
            sys.argv = ["firebreak", *args]
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main()
                    code = 0
                except SystemExit as exit:
                    code = exit.code
            outcomes.append([" ".join(args), code, err.getvalue().strip()])
        print(json.dumps({{"heavy": sorted(name for name in HEAVY if name in sys.modules), "outcomes": outcomes}}))
        """,
        f"sqlite:///{tmp_path / 'commands.db'}",
    )

    codes = {command: (code, err) for command, code, err in found["outcomes"]}  # type: ignore[union-attr]
    # Every command really ran against the database (a command that failed early would prove nothing).
    for command in ("--help", "dlq list", "canary status", "budgets", "runs", "ops", "breakers"):
        assert codes[command] == (0, ""), command
    assert codes["escalations show no-such-escalation"][0] == 1
    assert "no-such-run" in codes["trace show no-such-run"][1]
    assert found["heavy"] == []


def test_importing_the_python_api_loads_nothing_until_a_name_is_used(tmp_path):
    found = loaded_in_fresh_process(
        """
        import firebreak

        watched = (*HEAVY, "sqlalchemy", "langgraph", "graph", "app")
        print(json.dumps({
            "loaded": sorted(name for name in watched if name in sys.modules),
            "names": len(firebreak.__all__),
        }))
        """,
        f"sqlite:///{tmp_path / 'api.db'}",
    )

    assert isinstance(found["names"], int) and found["names"] > 40  # the package really is the public surface
    assert found["loaded"] == []


def test_the_python_apis_operator_views_load_no_model_stack(tmp_path):
    found = loaded_in_fresh_process(
        """
        from firebreak import Agent, Console, tool

        with Console() as console:
            read = [console.runs(), console.breakers(), console.budgets(), console.unclean(), console.canary_status()]
        print(json.dumps({
            "heavy": sorted(name for name in HEAVY if name in sys.modules),
            "read": read[-1]["stable"] == "base" and "app.views" in sys.modules,
        }))
        """,
        f"sqlite:///{tmp_path / 'views.db'}",
    )

    assert found["read"] is True
    assert found["heavy"] == []


def test_opening_services_on_a_current_schema_does_not_import_alembic(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'current.db'}"
    loaded_in_fresh_process(
        """
        from core.config import load_settings
        from app.services import migrate_database

        print(json.dumps({"revision": migrate_database(load_settings())}))
        """,
        database_url,
    )
    found = loaded_in_fresh_process(
        """
        from core.config import load_settings
        from app.services import build_services

        build_services(load_settings()).close()  # checks the schema is current, as every Agent.open does
        print(json.dumps({"alembic": "alembic" in sys.modules, "checked": "memory.migrate" in sys.modules}))
        """,
        database_url,
    )

    assert found == {"alembic": False, "checked": True}


def test_make_compiles_every_package_the_project_ships_ahead_of_its_processes():
    """Where PYTHONDONTWRITEBYTECODE is set, a package left out of the Makefile's list is compiled by every process."""
    makefile = (ROOT / "Makefile").read_text()
    compiled = re.search(r"^PACKAGES := (.+)$", makefile, re.MULTILINE)
    shipped = re.search(r"^include = \[(.+)\]$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert compiled and shipped

    assert sorted(compiled.group(1).split()) == sorted(name.strip(' "*') for name in shipped.group(1).split(","))
    for target in ("run", "test", "bench", "eval"):
        assert re.search(rf"^{target}: .*\bbytecode\b", makefile, re.MULTILINE), target
