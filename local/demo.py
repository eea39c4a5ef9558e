"""`make demo` / `threadrunner demo`: one question to an assistant (the Data Analyst by default) on the local
stack, everything that happened, and what to try next."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, suppress
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

ASSISTANT = "data-analyst"
QUESTION = "What were total sales by region last quarter?"
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}
DEMO_WAIT_SECONDS = 600


def run_demo(question: str = QUESTION, assistant: str = ASSISTANT) -> int:
    """Returns the exit code: 0 when the run completed."""
    from local.auth import issue_token
    from local.serve import local_upstream
    from local.stack import LocalStack

    console = Console()
    with ExitStack() as stack:
        upstream = stack.enter_context(local_upstream())
        console.print(f"Model: {upstream.description}")
        # The emulator answers at once: poll without waiting. A real model gets the environment's pacing.
        pacing = ("0", "1") if upstream.emulated else ("1", "5")
        overrides = {
            "THREADRUNNER_POLL_FIRST_SECONDS": pacing[0],
            "THREADRUNNER_POLL_MAX_SECONDS": pacing[1],
            # The demo prints the run's usage and cost itself: no EMF documents or info logs in between.
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **upstream.overrides,
        }
        local = stack.enter_context(
            LocalStack(upstream_base_url=upstream.base_url, api_key=upstream.api_key, overrides=overrides)
        )
        client = stack.enter_context(
            httpx.Client(
                base_url=local.api_url,
                headers={"Authorization": f"Bearer {issue_token('demo-user')}"},
                timeout=30,
            )
        )
        thread = _ok(client.post("/v1/threads", json={"assistant": assistant, "purpose": "demo"}))
        console.print(f"Thread [bold]{thread['id']}[/] for demo-user with the {assistant} assistant")
        console.print(f"Question: [italic]{question}[/]")
        run = _ok(client.post(f"/v1/threads/{thread['id']}/runs", json={"message": question}))
        run = _wait(client, run["id"], console)
        _show(console, run)
        if run.get("execution"):
            from threadrunner.execution_trace import execution_trace

            from local.trace import format_trace

            steps = execution_trace(local.client("stepfunctions"), run["execution"]["arn"])
            console.print(Panel(format_trace(steps), title="Execution trace"))
        console.print(_engine_line(run, emulated=upstream.emulated))
        console.print(
            Panel(what_to_try_next(assistant, emulated=upstream.emulated), title="What to try next")
        )
        return 0 if run["status"] == "completed" else 1


def _engine_line(run: dict[str, Any], *, emulated: bool) -> str:
    model = "the emulator's deterministic model" if emulated else f"the upstream's {run['model']}"
    engine = f"Engine: {run.get('engine') or 'unknown'} ({model})"
    if run.get("fallback_from"):
        engine += f", the fallback for {run['fallback_from']}: {run.get('fallback_reason') or 'an outage'}"
    return engine


def what_to_try_next(assistant: str, *, emulated: bool) -> str:
    """The next steps after the demo: other questions and engines, the stack by hand, the tools."""
    steps = [
        f'threadrunner demo --assistant {assistant} --message "Which region sold least last quarter?"',
        "THREADRUNNER_ENGINE=chat make demo      # or assistants: the same run on another engine",
        'threadrunner demo --assistant handbook --message "How many days of paid holiday do employees have?"',
        "                                        # an answer from a bundled document, with its citation",
        "make local                              # the stack on http://127.0.0.1:8765, then by hand:",
        "  TOKEN=$(.venv/bin/threadrunner token --user alice)",
        '  curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
        f"""    -d '{{"assistant":"{assistant}","purpose":"demo"}}' http://127.0.0.1:8765/v1/threads""",
        "threadrunner tools list                 # the tools an assistant can use; `tools call` runs one",
        "threadrunner new tool <name>            # a tool of your own: one module, found by the registry",
        "assistants/<name>.yaml                  # your own assistant (tools, instructions), then --assistant",
    ]
    if emulated:
        steps.append("OPENAI_API_KEY=sk-... make demo         # the same demo on a real model")
    return "\n".join(steps)


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
        )
    return dict(response.json())


def _wait(client: httpx.Client, run_id: str, console: Console) -> dict[str, Any]:
    deadline = time.monotonic() + DEMO_WAIT_SECONDS
    with console.status("Running...") as status:
        while True:
            run = _ok(client.get(f"/v1/runs/{run_id}"))
            status.update(f"Run {run_id}: {run['status']}")
            if run["status"] in TERMINAL or time.monotonic() > deadline:
                return run
            time.sleep(0.2)


def _show(console: Console, run: dict[str, Any]) -> None:
    console.print(f"Run [bold]{run['id']}[/]: [bold]{run['status']}[/]")
    if run.get("error"):
        console.print(f"[red]Error: {run['error']['code']}: {run['error']['message']}[/]")
    calls = Table("Tool", "Arguments", "Output (summary)", title="Tool calls", show_lines=True)
    for call in run["tool_calls"]:
        calls.add_row(call["name"], _compact(call["arguments"]), _compact(call["output"] or "", 160))
    if run["tool_calls"]:
        console.print(calls)
    usage = run["usage"]
    cost = (run.get("metrics") or {}).get("estimated_cost_usd")
    console.print(
        f"Usage: {usage['prompt_tokens']} prompt ({usage['cached_tokens']} cached)"
        f" + {usage['completion_tokens']} completion = {usage['total_tokens']} tokens;"
        f" estimated cost: {'unknown' if cost is None else f'USD {cost:.6f}'} ({run['model']})"
    )
    console.print(Panel(run.get("answer") or "(no answer)", title="Answer"))
    for citation in run.get("citations") or []:
        if citation["type"] == "file":
            quote = f': "{_compact(citation["quote"], 160)}"' if citation.get("quote") else ""
            console.print(f"Source: {citation['filename']} ({citation['file_id']}){quote}")
        else:
            console.print(f"Source: {citation.get('title') or citation['url']} <{citation['url']}>")
    if run.get("degraded"):
        console.print(f"[yellow]Answered without: {', '.join(run['degraded'])}[/]")


def _compact(text: str, limit: int = 400) -> str:
    with suppress(ValueError):
        text = json.dumps(json.loads(text), separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
