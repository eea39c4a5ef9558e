"""Streaming, in the real wire format: Responses server-sent events and ``chat.completion.chunk`` streams.

A response created with ``stream: true`` keeps its events (``StoredResponse.events``), numbered by
``sequence_number`` from 0, so ``GET /v1/responses/{id}?stream=true&starting_after=N`` replays the ones after N
and then follows the model. The timeline: ``response.created``, ``response.in_progress``, then the planned
answer as ``response.output_item.added``, ``response.content_part.added`` and several
``response.output_text.delta`` (its text split in pieces), released as the model "writes": spread over
``model_seconds`` in time-based mode, one piece per look in poll mode; once the response is final, the rest of
the pieces, the ``.done`` events of every output item (added first when not streamed before: tool calls, the
analysis), and ``response.completed`` / ``response.incomplete`` / ``response.failed``. A cancelled response's
stream just ends (the spec has no cancelled event).

A streamed chat completion is the same answer as chunks: the role, the content in pieces (or the tool
calls), the finish reason, the usage when ``stream_options.include_usage`` asks for it, then ``[DONE]``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from local.emulator.responses import StoredResponse, resource
from local.emulator.script import IncompletePlan, MessagePlan

# An answer is streamed in at most this many pieces, each a few words.
MAX_PIECES = 12
_WORDS = re.compile(r"\S+\s*|\s+")
# The longest a stream sleeps between looks at its response (it also wakes when a piece is due).
MAX_TICK_SECONDS = 0.25
# The ending events of a final response.
_ENDINGS = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}


def split_text(text: str, pieces: int = MAX_PIECES) -> list[str]:
    """``text`` in at most ``pieces`` pieces of whole words (with their spaces); joined, they are ``text``."""
    words = _WORDS.findall(text)
    if not words:
        return []
    size = math.ceil(len(words) / pieces)
    return ["".join(words[start : start + size]) for start in range(0, len(words), size)]


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as the Responses API sends it: its type as the event name."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def data_only(chunk: dict[str, Any] | str) -> bytes:
    """One server-sent event as Chat Completions sends it: data only (``[DONE]`` ends the stream)."""
    return f"data: {chunk if isinstance(chunk, str) else json.dumps(chunk)}\n\n".encode()


# Responses.
def advance(response: StoredResponse, model_seconds: float | None) -> bool:
    """Append the events that are due by now (the caller has just retrieved ``response``, which moves it on);
    True once the stream is complete (the response is final and every event is out)."""
    events = response.events
    if not events:
        response.pieces = split_text(_planned_text(response))
        _add(response, "response.created", response=_snapshot(response, "queued"))
    if response.status == "queued" and not response.final:
        return False
    if len(events) == 1:
        _add(response, "response.in_progress", response=_snapshot(response, "in_progress"))
    if response.pieces and response.released == 0 and not _message_added(response):
        _message_started(response)
    if response.final:
        response.released = len(response.pieces) if response.status != "cancelled" else response.released
    elif model_seconds and response.ready_at is not None:
        elapsed = time.time() - (response.ready_at - model_seconds)
        response.released = min(
            len(response.pieces), math.floor(len(response.pieces) * elapsed / model_seconds)
        )
    else:
        response.released = min(len(response.pieces), response.released + 1)
    _add_deltas(response)
    if not response.final:
        return False
    if response.status in _ENDINGS and not any(e["type"] in _ENDINGS.values() for e in events):
        _add_output_done(response)
        _add(response, _ENDINGS[response.status], response=resource(response))
    return True


def tick_seconds(response: StoredResponse, model_seconds: float | None, poll_after_ms: int) -> float:
    """How long a stream waits before looking at its response again."""
    if model_seconds and response.pieces:
        return min(max(model_seconds / (len(response.pieces) + 1), 0.01), MAX_TICK_SECONDS)
    return min(poll_after_ms / 1000, MAX_TICK_SECONDS)


def _planned_text(response: StoredResponse) -> str:
    """The answer the model writes while it runs (known at creation); other output comes when it is final."""
    plan = response.plan
    return plan.text if isinstance(plan, MessagePlan | IncompletePlan) else ""


def _add(stored: StoredResponse, event_type: str, **fields: Any) -> None:
    stored.events.append({"type": event_type, "sequence_number": len(stored.events), **fields})


def _snapshot(response: StoredResponse, status: str) -> dict[str, Any]:
    """The response as it was while the model ran: no output, usage or completion yet."""
    body = resource(response)
    body.update(status=status, output=[], completed_at=None, error=None, incomplete_details=None)
    body.pop("usage", None)
    return body


def _message_added(response: StoredResponse) -> bool:
    return any(e["type"] == "response.output_item.added" for e in response.events)


def _message_started(response: StoredResponse) -> None:
    item = {
        "type": "message",
        "id": response.message_id,
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    _add(response, "response.output_item.added", output_index=0, item=item)
    _add(
        response,
        "response.content_part.added",
        item_id=response.message_id,
        output_index=0,
        content_index=0,
        part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    )


def _add_deltas(response: StoredResponse) -> None:
    sent = sum(
        1 for e in response.events if e["type"] == "response.output_text.delta" and e["output_index"] == 0
    )
    for piece in response.pieces[sent : response.released]:
        _text_delta(response, response.message_id, 0, piece)


def _text_delta(response: StoredResponse, item_id: str, output_index: int, piece: str) -> None:
    _add(
        response,
        "response.output_text.delta",
        item_id=item_id,
        output_index=output_index,
        content_index=0,
        delta=piece,
        logprobs=[],
    )


def _add_output_done(response: StoredResponse) -> None:
    """Each output item's end; an item not streamed before (tool calls, the analysis) is added first."""
    for index, item in enumerate(response.output):
        streamed = index == 0 and item.get("id") == response.message_id and bool(response.pieces)
        if not streamed:
            added = {**item, "status": "in_progress"} if "status" in item else dict(item)
            if item["type"] == "message":
                added["content"] = []
            _add(response, "response.output_item.added", output_index=index, item=added)
        if item["type"] == "message":
            for content_index, part in enumerate(item["content"]):
                if not streamed:
                    empty = {**part, "text": "", "annotations": []}
                    _add(
                        response,
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=content_index,
                        part=empty,
                    )
                    for piece in split_text(part["text"]):
                        _text_delta(response, item["id"], index, piece)
                _add(
                    response,
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=content_index,
                    text=part["text"],
                    logprobs=[],
                )
                _add(
                    response,
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=content_index,
                    part=part,
                )
        _add(response, "response.output_item.done", output_index=index, item=item)


# Chat Completions.
def chat_chunks(body: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """A chat completion (the non-streaming body) as the chunks that stream it."""
    choice = body["choices"][0]
    message = choice["message"]
    base = {key: body[key] for key in ("id", "created", "model", "service_tier", "system_fingerprint")}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in split_text(message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": body["usage"]})
    return chunks


def response_events(
    look: Callable[[], tuple[list[dict[str, Any]], bool, float] | None],
    after: int,
    wait: Callable[[float], bool],
) -> Iterator[bytes]:
    """The events after sequence number ``after``, then each new one as ``look`` (the response's events so far,
    whether the stream is complete, how long to wait before looking again; None: gone) finds it."""
    sent = after
    while (seen := look()) is not None:
        events, complete, pause = seen
        for event in events[sent + 1 :]:
            sent = event["sequence_number"]
            yield sse(event)
        if complete or wait(pause):
            return
