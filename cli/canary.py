"""Canary rollouts: start a release against the stable one, read how it does, promote it or roll it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.access import fleet_reader_of, operator_of
from cli.options import ConfigOption, JsonOption, echo_json, settings_of

if TYPE_CHECKING:  # imported where used: the CLI starts without the service stack
    from app.canary.controller import Canary
    from app.operators import Operator
    from app.services import Services
    from memory.audit import AuditLog

canary_cli = typer.Typer(no_args_is_help=True, help="Roll a release out to a growing share of users, or back.")


def _services(config: Path | None) -> Services:
    from app.services import build_services

    return build_services(settings_of(config))


def _act(config: Path | None, as_json: bool, act: Callable[[Canary, AuditLog, Operator], Any]) -> None:
    """Do ``act(canary, audit log, operator)`` (an audited action of app.canary.actions), then print the rollout."""
    services = _services(config)
    act(services.canary, services.stores.audit, operator_of(services.settings))
    _print_rollout(services.canary, as_json)


def _print_rollout(canary: Canary, as_json: bool) -> None:
    from app.canary.report import report_lines, rollout_report

    report = rollout_report(canary)
    if as_json:
        echo_json(report)
    else:
        typer.echo("\n".join(report_lines(report)))


@canary_cli.command("start")
def canary_start(
    release: Annotated[str, typer.Argument(help="A release of [releases] (its name is its version).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start rolling RELEASE out against the stable release, at the first step of [canary] steps."""
    from app.canary.actions import start_as

    _act(config, as_json, lambda canary, log, operator: start_as(canary, log, operator, release))


@canary_cli.command("status")
def canary_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The stable release and the active (or latest) rollout: both arms, this step's analysis, decisions."""
    services = _services(config)
    fleet_reader_of(services.settings)
    _print_rollout(services.canary, as_json)


@canary_cli.command("promote")
def canary_promote(
    full: Annotated[bool, typer.Option("--full", help="Skip the remaining steps: 100% now.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Advance the active rollout one step (or all the way with --full), whatever its analysis says."""
    from app.canary.actions import promote_as

    _act(config, as_json, lambda canary, log, operator: promote_as(canary, log, operator, full=full))


@canary_cli.command("rollback")
def canary_rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record and the alert.")] = "rolled back by hand",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send all new traffic back to the control at once; recorded and alerted."""
    from app.canary.actions import rollback_as

    _act(config, as_json, lambda canary, log, operator: rollback_as(canary, log, operator, reason=reason))
