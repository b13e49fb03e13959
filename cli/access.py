"""Who runs a command, and what of which tenant they may see (see [operators])."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from app.access import everyone, only_tenant, require_fleet_reader, require_reader, require_seen
from core.config import Settings

if TYPE_CHECKING:  # imported where used: the CLI starts without the service stack
    from app.operators import Operator


def operator_of(settings: Settings) -> Operator:
    """Who runs this command: the owner of FIREBREAK_OPERATOR_TOKEN, else the local person."""
    from app.operators import cli_operator

    return cli_operator(settings.operators, os.environ)


def reader_of(settings: Settings) -> Operator:
    """The operator, who must be someone to read runs, traces, escalations, dead letters or the cache."""
    return require_reader(operator_of(settings))


def fleet_reader_of(settings: Settings) -> Operator:
    """The operator, who must see every tenant to read fleet-wide figures (ops, breakers, budgets)."""
    return require_fleet_reader(operator_of(settings))


__all__ = ["everyone", "fleet_reader_of", "only_tenant", "operator_of", "reader_of", "require_seen"]
