"""The ``threadrunner`` command: local mode for developers (the deployed service needs none of it)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from local.cli_assistants import app as assistants_app
from local.cli_bench import bench_app
from local.cli_chat import chat
from local.cli_files import files_app
from local.cli_knowledge import knowledge_app
from local.cli_runs import runs_app
from local.cli_tools import new_app, tools_app
from local.cli_usage import usage
from local.cli_webhooks import webhooks_app


class CompletionMode(StrEnum):  # infra.workflows.Completion, as typer wants a choice
    webhook = "webhook"
    poll = "poll"


app = typer.Typer(
    no_args_is_help=True, help="threadrunner local mode: the local stack, tokens, tools, the demo."
)
app.add_typer(tools_app, name="tools")
app.add_typer(new_app, name="new")
app.add_typer(assistants_app, name="assistants")
app.add_typer(bench_app, name="bench")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(runs_app, name="runs")
app.add_typer(files_app, name="files")
app.add_typer(knowledge_app, name="knowledge")
app.command()(chat)
app.command()(usage)


@app.command()
def local(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port for the HTTP API on 127.0.0.1 (0: any free port).")
    ] = 8765,
    model_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="The emulator's model takes this many seconds of wall time per call, however often it is "
            "polled (default: 0.5 s, then it signs its webhook; with --completion poll it answers after "
            "one poll).",
        ),
    ] = None,
    completion: Annotated[
        CompletionMode | None,
        typer.Option(
            help="How runs learn that a model call ended: webhook (the emulator's signed webhooks; the "
            "default with the emulator) or poll (the default with a real upstream, which cannot reach "
            "127.0.0.1).",
        ),
    ] = None,
) -> None:
    """Serve the local stack (API, workflow, emulator) until stopped; `make local PORT=...` runs this."""
    from local.serve import serve

    serve(port=port, model_seconds=model_seconds, completion=completion.value if completion else None)


@app.command()
def token(
    user: Annotated[str, typer.Option(help="The user id (the token's sub).")] = "demo-user",
    admin: Annotated[bool, typer.Option(help="An operator: the token is in the admin group.")] = False,
) -> None:
    """Print a JWT the local stack accepts for USER."""
    from threadrunner.settings import operator_settings

    from local.auth import issue_token

    typer.echo(issue_token(user, groups=[operator_settings().admin_group] if admin else None))


@app.command()
def demo(
    assistant: Annotated[
        str, typer.Option(help="The assistant to ask (assistants/<name>.yaml).")
    ] = "data-analyst",
    message: Annotated[
        str, typer.Option(help="The question.")
    ] = "What were total sales by region last quarter?",
) -> None:
    """Ask an assistant a question on the local stack, show what happened and what to try next."""
    from local.demo import run_demo

    raise typer.Exit(run_demo(message, assistant=assistant))


@app.command()
def sweep(
    url: Annotated[
        str, typer.Option(help="The running `threadrunner local` stack.")
    ] = "http://127.0.0.1:8765",
) -> None:
    """Run the sweep on a running local stack, as the schedule does in AWS: repair runs whose execution died
    and the thread locks they left, clean expired threads, retry failed cleanups."""
    import httpx

    try:
        response = httpx.post(f"{url.rstrip('/')}/_local/sweep", timeout=300)
    except httpx.TransportError as error:
        typer.echo(f"no local stack at {url} ({error}); start one with `threadrunner local`", err=True)
        raise typer.Exit(1) from error
    typer.echo(json.dumps(response.json(), indent=2))
    raise typer.Exit(0 if response.status_code == 200 else 1)
