"""``threadrunner bench``: turns on the local stack, priced per 1,000 (local/bench_turns.py), then each handler's
INIT import time as a ratio to ``import openai``; ``threadrunner bench imports`` prints only the latter, both
measured in this run, each the median of fresh interpreters (timing lives here, never in tests)."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Annotated

import typer

bench_app = typer.Typer(help="Measure what a turn and a cold start cost.")


@bench_app.callback(invoke_without_command=True)
def turns(
    context: typer.Context,
    scenario: Annotated[
        list[str] | None, typer.Option(help="plain (an answer) or tools (two tool rounds); repeatable.")
    ] = None,
    model_seconds: Annotated[
        list[float] | None, typer.Option(min=0, help="Wall seconds the model takes per call; repeatable.")
    ] = None,
    turns: Annotated[int, typer.Option(min=1, help="Turns per scenario (the figures are averages).")] = 3,
    mode: Annotated[list[str] | None, typer.Option(help="poll or webhook; repeatable.")] = None,
    imports_runs: Annotated[
        int, typer.Option(min=0, help="Fresh interpreters per handler for the import ratios (0: skip).")
    ] = 3,
) -> None:
    """Run turns on the local stack and print, per scenario, a JSON line and then a table: state
    transitions, Lambda invocations, DynamoDB units (estimated), completion delay and the cost per 1,000
    turns beside the seed's one-Lambda design; then the handlers' import-time ratios."""
    if context.invoked_subcommand is not None:
        return
    from local.bench_turns import MODES, SCENARIOS, run_scenarios, table

    scenarios = scenario or list(SCENARIOS)
    modes = mode or list(MODES)
    for name, allowed in ((scenarios, SCENARIOS), (modes, MODES)):
        if unknown := sorted(set(name) - set(allowed)):
            raise typer.BadParameter(f"unknown {unknown}; choose from {', '.join(allowed)}")
    summaries = []
    for summary in run_scenarios(scenarios, model_seconds or [3.0, 30.0], turns, modes):
        typer.echo(json.dumps(summary, sort_keys=True))
        summaries.append(summary)
    typer.echo(table(summaries))
    if imports_runs:
        imports(runs=imports_runs, traced=True)


@bench_app.command("imports")
def imports(
    runs: Annotated[int, typer.Option(min=1, help="Fresh interpreters per handler (the median counts).")] = 7,
    traced: Annotated[bool, typer.Option(help="Tracing on, as in Lambda (off: as the local stack).")] = True,
) -> None:
    """Print each handler's import time and its ratio to `import openai` (0.35 or less: a light cold start),
    and the API's first request after INIT (the AWS SDK and clients are made on first use, not at INIT)."""
    from local.handler_imports import (
        REPO_ROOT,
        api_first_request,
        lambda_environment,
        openai_import_seconds,
        probe,
    )

    # The kinds come from infra (not an installed package): the bench runs in a clone.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from infra.constants import ALL_FUNCTIONS

    baseline = statistics.median(openai_import_seconds() for _ in range(runs))
    typer.echo(f"{'import openai':<28} {baseline * 1000:7.0f} ms   1.00x")
    for name in ALL_FUNCTIONS:
        environment = lambda_environment(
            kind=name.kind.value, tool=getattr(name, "tool", None), traced=traced
        )
        seconds = statistics.median(probe(name.code_folder, environment).seconds for _ in range(runs))
        typer.echo(f"{name.value:<28} {seconds * 1000:7.0f} ms   {seconds / baseline:.2f}x  ({name.kind})")
        if name.kind == "api":
            probes = [probe(name.code_folder, environment, event=api_first_request()) for _ in range(runs)]
            first = statistics.median(found.first_call or 0.0 for found in probes)
            whole = statistics.median(found.seconds + (found.first_call or 0.0) for found in probes)
            typer.echo(
                f"{'  + first request':<28} {first * 1000:7.0f} ms   {first / baseline:.2f}x  "
                f"(GET /v1/openapi.json; INIT and it: {whole * 1000:.0f} ms, {whole / baseline:.2f}x)"
            )
