"""``stream: true``: a run's events in the Assistants API's stream (``thread.run.*``, ``thread.run.step.*``,
``thread.message.*``, then ``done``), as Server-Sent Events.

API Gateway HTTP APIs cannot stream a response: the events are sent together once the run stops, when it waits
for tool outputs or has ended, or after STREAM_WAIT_SECONDS (the Lambda's own timeout is 25 s), whichever comes
first. A stream that stops at the wait ends without the run's end: the application polls on, as with any run
that outlasts it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from threadrunner.models.records import RunRecord, RunStatus
from threadrunner.services.context import ApiContext

STREAM_WAIT_SECONDS = 18


@dataclass(frozen=True)
class EventStream:
    """An answer of Server-Sent Events (the handler sends it as ``text/event-stream``)."""

    text: str


def run_stream(ctx: ApiContext, run_id: str, *, created: bool) -> EventStream:
    """The run's events from its creation (``created``) or from its going on after tool outputs."""
    from threadrunner.compat import runs_api, threads_api

    events: list[tuple[str, Any]] = []
    run = ctx.runs.get(run_id)
    if created:
        queued = {**runs_api.run_resource(ctx, run), "status": "queued"}
        events += [("thread.run.created", queued), ("thread.run.queued", queued)]
    run = _until_it_stops(ctx, run)
    resource = runs_api.run_resource(ctx, run)
    events.append(("thread.run.in_progress", {**resource, "status": "in_progress", "usage": None}))
    steps = runs_api.steps_of(ctx, run)
    if resource["status"] == "requires_action":
        waiting = [step for step in steps if step["type"] == "tool_calls"][-1:]
        events += [("thread.run.step.created", step) for step in waiting]
        events.append(("thread.run.requires_action", resource))
    elif run.status.is_terminal:
        for step in steps:
            if step["type"] == "message_creation" and run.status is RunStatus.completed:
                events += _message_events(ctx, threads_api, run, step)
        events.append((f"thread.run.{resource['status']}", resource))
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return EventStream(body + "event: done\ndata: [DONE]\n\n")


def _until_it_stops(ctx: ApiContext, run: RunRecord) -> RunRecord:
    deadline = time.monotonic() + STREAM_WAIT_SECONDS
    while (
        not (run.status.is_terminal or run.status is RunStatus.requires_action)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
        run = ctx.runs.get(run.id)
    return run


def _message_events(
    ctx: ApiContext, threads_api: Any, run: RunRecord, step: dict[str, Any]
) -> list[tuple[str, Any]]:
    """The answer's message: created (empty), in progress, its content as deltas, completed; in its step."""
    thread = ctx.threads.get(run.user_id, run.thread_id)
    answers = [
        m for m in threads_api.all_messages(ctx, thread) if m["run_id"] == run.id and m["role"] == "assistant"
    ]
    if not answers:
        return []
    message = answers[-1]
    opened = {**message, "status": "in_progress", "content": [], "completed_at": None}
    deltas = [
        {**part, "index": index}
        if part["type"] != "text"
        else {"index": index, "type": "text", "text": {"value": part["text"]["value"], "annotations": []}}
        for index, part in enumerate(message["content"])
    ]
    step_started = {**step, "status": "in_progress", "completed_at": None}
    return [
        ("thread.run.step.created", step_started),
        ("thread.message.created", opened),
        ("thread.message.in_progress", opened),
        (
            "thread.message.delta",
            {"id": message["id"], "object": "thread.message.delta", "delta": {"content": deltas}},
        ),
        ("thread.message.completed", message),
        ("thread.run.step.completed", step),
    ]
