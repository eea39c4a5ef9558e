"""``threadrunner runs list THREAD | watch RUN | trace RUN``: a thread's runs, a run's events as they happen,
its execution state by state; ``--json`` for scripts."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

import typer

from local.cli_api_client import LOCAL_API_URL, ApiUrl, AsJson, Token, api_client, print_json

runs_app = typer.Typer(no_args_is_help=True, help="A thread's runs, a run's live events and its trace.")


@runs_app.command("list")
def list_runs(
    thread: Annotated[str, typer.Argument(help="The thread (thr_...).")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="Runs per page.")] = 20,
    after: Annotated[str | None, typer.Option(help="A page's next: the runs after it.")] = None,
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The thread's runs, newest first."""
    from rich.console import Console
    from rich.table import Table

    with api_client(api_url, token) as client:
        page = client.runs.list(thread, limit=limit, after=after)
    if as_json:
        print_json(page)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    console = Console()
    # The id whole (people copy it into `runs watch` and `runs trace`), the answer's start in what is left.
    room = max(10, console.width - 66)
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("tools", justify="right", no_wrap=True)
    table.add_column("answer", no_wrap=True)
    for run in page.runs:
        answer = " ".join((run.answer or (run.error.message if run.error else "") or "").split())
        table.add_row(
            run.id,
            run.status,
            run.created_at.strftime("%m-%d %H:%M"),
            str(len(run.tool_calls)),
            answer[: room - 1] + "…" if len(answer) > room else answer,
        )
    console.print(table)
    if page.next:
        console.print(f"more: --after {page.next}")


@runs_app.command()
def watch(
    run: Annotated[str, typer.Argument(help="The run (run_...).")],
    after: Annotated[int, typer.Option(min=0, help="Start after this event's seq.")] = 0,
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The run's events as they happen, until it ends (exit status 0 when it completed). --json: one event per
    line."""
    from rich.console import Console

    from local.run_event_lines import event_line

    console = Console(highlight=False)
    with api_client(api_url, token) as client:
        last = None
        with nullcontext() if as_json else console.status(f"watching {run}…"):
            for event in client.runs.events(run, after=after):
                last = event
                if as_json:
                    typer.echo(event.model_dump_json())
                else:
                    console.print(f"[dim]{event.seq:>4} {event.created_at:%H:%M:%S}[/]  {event_line(event)}")
    raise typer.Exit(0 if last is not None and last.type == "run.completed" else 1)


@runs_app.command()
def trace(
    run: Annotated[str, typer.Argument(help="The run (run_...).")],
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The run's Step Functions execution, state by state: when each was entered, how long it took, errors."""
    from rich.console import Console
    from rich.table import Table

    with api_client(api_url, token) as client:
        found = client.runs.trace(run)
    if as_json:
        print_json(found)
        return
    console = Console(highlight=False)
    execution = found.execution
    console.print(
        f"Run [bold]{run}[/]: execution {execution.status or 'none yet'}, {found.transitions} transitions"
    )
    if execution.console_url:
        console.print(f"[dim]{execution.console_url}[/]")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "state", "at", "took", "error"):
        table.add_column(column, justify="right" if column in ("#", "at", "took") else "left")
    origin = found.states[0].entered_at if found.states else None
    for number, state in enumerate(found.states, start=1):
        offset = (state.entered_at - origin).total_seconds() if origin else 0.0
        took = "running" if state.duration_ms is None else f"{state.duration_ms} ms"
        table.add_row(str(number), state.name, f"{offset:.3f}s", took, state.error or "")
    console.print(table)
