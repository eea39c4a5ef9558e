"""``threadrunner bench imports``: each handler's INIT import time as a ratio to ``import openai``, both
measured in this run, each the median of fresh interpreters (timing lives here, never in tests)."""

from __future__ import annotations

import statistics
import sys
from typing import Annotated

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Measure what a cold start costs.")


@bench_app.command("imports")
def imports(
    runs: Annotated[int, typer.Option(min=1, help="Fresh interpreters per handler (the median counts).")] = 7,
    traced: Annotated[bool, typer.Option(help="Tracing on, as in Lambda (off: as the local stack).")] = True,
) -> None:
    """Print each handler's import time and its ratio to `import openai` (0.35 or less: a light cold start)."""
    from local.handler_imports import REPO_ROOT, lambda_environment, openai_import_seconds, probe

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
