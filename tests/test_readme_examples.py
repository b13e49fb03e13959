"""The README's extension examples, run exactly as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def test_the_tool_and_node_examples_work_together(tmp_path, write_script):
    tool_block, node_block = python_blocks("Extend Firebreak")
    (tmp_path / "my_tools.py").write_text(tool_block, encoding="utf-8")
    script = write_script(
        {"tool_calls": [{"name": "exchange_rate", "arguments": {"currency": "eur"}}]},
        {
            "expect": "String should match pattern",
            "tool_calls": [{"name": "exchange_rate", "arguments": {"currency": "EUR"}}],
        },
        {"expect": "0.92", "text": "1 USD is 0.92 EUR."},
    )
    env = {
        **os.environ,
        "FIREBREAK_SCRIPT": script,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_ROUTES__CHAT__MODELS": json.dumps(["scripted/demo"]),
        "FIREBREAK_TOOLS__MODULES": json.dumps(["examples.support_desk.tools", "my_tools"]),
    }
    done = subprocess.run(
        [sys.executable, "-c", node_block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 USD is 0.92 EUR. (automated answer)"
