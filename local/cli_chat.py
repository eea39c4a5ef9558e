"""``threadrunner chat --assistant NAME``: talk to an assistant at the prompt. Each answer streams in as it is
written (or appears when the run ends, where the deployment streams none), tool calls show live with a spinner
and then their duration, client-side tool calls are answered at the prompt and approvals asked as yes/no.
``/exit`` or Ctrl-D leaves; Ctrl-C during an answer cancels that run."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated

import typer

from local.cli_api_client import LOCAL_API_URL, ApiUrl, AsJson, Token, api_client

if TYPE_CHECKING:
    from rich.console import Console
    from threadrunner.client import Threadrunner
    from threadrunner.models.api_runs import ApprovalIn, RequiredCallOut, RunOut

EXIT_COMMANDS = frozenset({"/exit", "/quit"})
YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})


def chat(
    assistant: Annotated[str, typer.Option(help="The assistant (assistants/<name>.yaml).")] = "data-analyst",
    purpose: Annotated[
        str, typer.Option(help="Which of your threads with the assistant: the same purpose goes on with it.")
    ] = "chat",
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Chat with an assistant: answers stream in, tool calls show live, you answer client tools and approvals.

    --json prints each run's events and then the ended run as JSON lines."""
    from rich.console import Console

    console = Console(highlight=False)
    with api_client(api_url, token) as client:
        thread = client.threads.get_or_create(assistant, purpose)
        if not as_json:
            console.print(
                f"Chatting with [bold]{assistant}[/] on thread {thread.id}: /exit or Ctrl-D to leave, "
                "Ctrl-C to stop an answer."
            )
        session = ChatSession(client, thread.id, console, as_json=as_json)
        while (message := session.read_message()) is not None and session.turn(message):
            pass


class ChatSession:
    def __init__(self, client: Threadrunner, thread_id: str, console: Console, *, as_json: bool) -> None:
        self._client = client
        self._thread_id = thread_id
        self._console = console
        self._as_json = as_json

    def read_message(self) -> str | None:
        """The next message; None on /exit or end of input."""
        while True:
            try:
                text = self._console.input("[bold cyan]you>[/] ").strip()
            except EOFError:
                self._console.print()
                return None
            if text in EXIT_COMMANDS:
                return None
            if text:
                return text

    def turn(self, message: str) -> bool:
        """One run for ``message``, followed to its end; False when the person left during it."""
        run = self._client.runs.create(self._thread_id, message, if_busy="enqueue")
        try:
            self._follow(run.id)
        except (KeyboardInterrupt, EOFError) as stop:
            with suppress(Exception):  # it may have ended meanwhile
                self._client.runs.cancel(run.id)
            self._console.print(f"\n[yellow]cancelled {run.id}[/]")
            return not isinstance(stop, EOFError)
        return True

    def _follow(self, run_id: str) -> None:
        from rich.markup import escape
        from threadrunner.models.run_events import RunEventType

        from local.run_event_lines import tool_call_done

        spinner = self._console.status("thinking…")
        streamed = False
        running: dict[str, str] = {}  # tool calls under way: id -> name
        if not self._as_json:
            spinner.start()
        try:
            for event in self._client.runs.events(run_id):
                if self._as_json:
                    typer.echo(event.model_dump_json())
                elif event.type == RunEventType.message_delta:
                    if not streamed:
                        spinner.stop()
                        self._console.print("[bold green]assistant>[/] ", end="")
                        streamed = True
                    self._console.out(str(event.data.get("text", "")), end="", highlight=False)
                elif event.type == RunEventType.tool_call_created:
                    running[str(event.data.get("id"))] = escape(str(event.data.get("name", "")))
                    spinner.update(", ".join(running.values()) + "…")
                elif event.type == RunEventType.tool_call_completed:
                    running.pop(str(event.data.get("id")), None)
                    self._console.print("  " + tool_call_done(event.data))
                    spinner.update(", ".join(running.values()) + "…" if running else "thinking…")
                if event.type == RunEventType.action_required:
                    spinner.stop()
                    self._answer_action(run_id)
                    if not self._as_json:
                        spinner.start()
        finally:
            spinner.stop()
        self._show_end(self._client.runs.wait(run_id, timeout=30), streamed=streamed)

    def _show_end(self, run: RunOut, *, streamed: bool) -> None:
        from rich.markup import escape

        if self._as_json:
            typer.echo(run.model_dump_json())
            return
        if streamed:
            self._console.print()
        elif run.answer:
            self._console.print(f"[bold green]assistant>[/] {escape(run.answer)}")
        if run.status != "completed":
            error = f": {escape(run.error.code)}: {escape(run.error.message)}" if run.error else ""
            self._console.print(f"[red]run {run.status}[/]{error}")

    def _answer_action(self, run_id: str) -> None:
        """Answer what the run waits for: every client tool call's output, or a yes/no per call to approve."""
        from threadrunner.models.api_runs import ToolOutputIn

        run = self._client.runs.wait(run_id)  # the record says requires_action before its event is logged
        action = run.required_action
        if action is None:
            return  # answered elsewhere, or the run ended
        if action.type == "approve_tool_calls":
            self._client.runs.approve(run_id, [self._decide(call) for call in action.tool_calls])
            return
        outputs = []
        for call in action.tool_calls:
            self._console.print(f"[yellow]?[/] [bold]{call.name}[/]({_arguments(call)}) runs on your side")
            output = self._console.input("  output> ")
            outputs.append(ToolOutputIn(tool_call_id=call.id, output=output))
        self._client.runs.submit_tool_outputs(run_id, outputs)

    def _decide(self, call: RequiredCallOut) -> ApprovalIn:
        from threadrunner.models.api_runs import ApprovalIn

        self._console.print(f"[yellow]?[/] approve [bold]{call.name}[/]({_arguments(call)})?")
        while (answer := self._console.input("  yes or no> ").strip().lower()) not in YES | NO:
            self._console.print("  [dim]y or n[/]")
        approved = answer in YES
        reason = None if approved else self._console.input("  why not (optional)> ").strip() or None
        return ApprovalIn(tool_call_id=call.id, approve=approved, reason=reason)


def _arguments(call: RequiredCallOut, limit: int = 300) -> str:
    from rich.markup import escape

    text = call.arguments
    with suppress(ValueError):
        text = json.dumps(json.loads(text), separators=(", ", ": "))
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
