"""A run's events as lines for people (``threadrunner runs watch`` and ``threadrunner chat``): what happened,
the tool calls with their durations, what the run waits for. ``message.delta`` is text, not a line."""

from __future__ import annotations

from rich.markup import escape
from threadrunner.models.run_events import RunEvent, RunEventType

ENDING_STYLES = {
    RunEventType.run_completed: "green",
    RunEventType.run_failed: "red",
    RunEventType.run_cancelled: "yellow",
    RunEventType.run_timed_out: "red",
}


def event_line(event: RunEvent) -> str:
    """Rich markup: one line saying what the event means."""
    data = event.data
    match event.type:
        case RunEventType.run_queued:
            position = data.get("queue_position")
            return "queued" + (f" (position {position})" if position else "")
        case RunEventType.run_started:
            return f"started on the {data.get('engine') or 'default'} engine"
        case RunEventType.model_started:
            number = data.get("round")
            return f"model call {number + 1 if isinstance(number, int) else '?'}"
        case RunEventType.model_completed:
            tokens = (data.get("usage") or {}).get("total_tokens")
            return f"model answered ({data.get('status', 'done')}, {tokens if tokens is not None else '?'} tokens)"
        case RunEventType.tool_call_created:
            side = " [dim](runs on your side)[/]" if data.get("runs_on") == "client" else ""
            return f"calling {escape(str(data.get('name', '?')))}{side}"
        case RunEventType.tool_call_completed:
            return tool_call_done(data)
        case RunEventType.action_required:
            kind = "approvals" if data.get("type") == "approve_tool_calls" else "tool outputs"
            return f"[yellow]waiting for {kind}[/] ({len(data.get('tool_call_ids') or [])} calls)"
        case RunEventType.action_submitted:
            return f"answered by {escape(str(data.get('by') or 'the application'))}"
        case RunEventType.message_delta:
            return escape(str(data.get("text", "")))
    error = data.get("error") or {}
    detail = f": {escape(error.get('code', ''))}: {escape(error.get('message', ''))}" if error else ""
    style = ENDING_STYLES.get(event.type, "bold")
    return f"[{style}]{event.type.value.removeprefix('run.')}[/]{detail}"


def tool_call_done(data: dict[str, object]) -> str:
    mark = "[red]✗[/]" if data.get("is_error") else "[green]✓[/]"
    duration = data.get("duration_ms")
    took = f" [dim]{duration} ms[/]" if duration is not None else ""
    return f"{mark} {escape(str(data.get('name', '?')))}{took}"
