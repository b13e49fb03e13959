"""Getting a machine ready: the database schema, the embedded model file, and a check of everything configured."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cli.options import ConfigOption, JsonOption, echo_json, settings_of

commands = typer.Typer()
db_cli = typer.Typer(no_args_is_help=True, help="Manage the database schema.")


@db_cli.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply pending migrations to the configured database."""
    from app.services import migrate_database

    typer.echo(f"database at revision {migrate_database(settings_of(config))}")


@commands.command()
def setup(config: ConfigOption = None) -> None:
    """Prepare everything a first run needs: the embedded model file and the database."""
    from app.gateway.model_files import assemble_model
    from app.services import migrate_database

    settings = settings_of(config)
    path = assemble_model(settings.local_model.cache_path)
    typer.echo(f"model ready: {path}")
    typer.echo(f"database at revision {migrate_database(settings)}")


@commands.command()
def doctor(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check every configured store and model; exit 1 if any is unusable."""
    from graph.doctor import run_checks

    checks = asyncio.run(run_checks(settings_of(config)))
    if as_json:
        echo_json([check.__dict__ for check in checks])
    else:
        for check in checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<40} {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@commands.command("graph")
def graph_command(
    config: ConfigOption = None,
    release: Annotated[
        str | None, typer.Option("--release", help="A release's graph instead of [agent] graph.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw the agent's graph as Mermaid (paste it in Markdown): see where your nodes sit before a run does."""
    from app.canary.release import BASE_RELEASE, release_spec
    from graph.builder import configured_builder

    spec = release_spec(settings_of(config), release or BASE_RELEASE)  # base: [agent] graph itself
    builder = configured_builder(spec.graph, setting=spec.graph_setting)
    drawn = builder.compile().get_graph()
    if as_json:
        edges = [[edge.source, edge.target] for edge in drawn.edges]
        echo_json(
            {
                "graph": spec.graph or "built-in",
                "digest": builder.digest(),
                "nodes": list(builder.nodes),
                "edges": edges,
            }
        )
        return
    typer.echo(drawn.draw_mermaid())
