"""``threadrunner assistants``: check the assistants' YAML definitions, print their JSON schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Check the assistants' YAML definitions (assistants/*.yaml).")


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Definition files or folders of *.yaml (default: the assistants folder)."),
    ] = None,
) -> None:
    """Check each definition as `make synth` and the local stack do; print every problem with its file,
    line and key, and exit 1 if there is one."""
    from threadrunner.assistant_validation import check_paths
    from threadrunner.settings import ToolSettings

    configs, problems = check_paths(paths or [ToolSettings().assistants_dir])
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(configs)} assistant{'s' if len(configs) != 1 else ''} valid")


@app.command()
def schema() -> None:
    """Print the definitions' JSON schema (what assistants/assistant.schema.json holds)."""
    from threadrunner.assistant_definitions import assistant_json_schema

    typer.echo(json.dumps(assistant_json_schema(), indent=2))
