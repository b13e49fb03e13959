"""What every command shares: its common options, the settings they name, and JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import Settings, load_settings

ConfigOption = Annotated[Path | None, typer.Option("--config", help="A TOML file merged over firebreak.toml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Send a retry with the same key: the same request gets the first run and its result, never a "
        "second run; another request under the key is refused (keys last [idempotency] request_key_ttl_s).",
    ),
]
ModelOption = Annotated[str | None, typer.Option("--model", help="A route name or a model such as scripted/demo.")]


def settings_of(config: Path | None) -> Settings:
    """The settings: firebreak.toml, the environment, and ``config`` merged over them."""
    return load_settings(config)


def echo_json(data: Any) -> None:
    """Print ``data`` as one indented JSON object."""
    typer.echo(json.dumps(data, indent=2, default=str))
