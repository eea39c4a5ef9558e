"""A run's events: what happened, in order, each with its ``seq`` in the run (1, 2, 3, ... without gaps).

Small fields only: an event names what it is about (ids, sizes, durations, usage) and large bodies stay where
they are (the run record, the tool-call ledger, the thread's log), referenced by id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from threadrunner.models.deferred_model import DeferredModel


class RunEventType(StrEnum):
    run_queued = "run.queued"
    run_started = "run.started"
    model_started = "model.started"
    model_completed = "model.completed"  # data: usage
    tool_call_created = "tool_call.created"  # data: id, name, runs_on
    tool_call_completed = "tool_call.completed"  # data: id, name, output_chars, duration_ms, is_error
    action_required = "action.required"  # data: type, tool_call_ids, expires_at
    action_submitted = "action.submitted"  # data: type, tool_call_ids, by
    message_delta = "message.delta"  # data: round, text (a chunk of the answer as the model writes it)
    run_completed = "run.completed"
    run_failed = "run.failed"  # data: error code and message
    run_cancelled = "run.cancelled"
    run_timed_out = "run.timed_out"

    @property
    def ends_run(self) -> bool:
        return self in ENDING_EVENTS


ENDING_EVENTS = frozenset(
    {
        RunEventType.run_completed,
        RunEventType.run_failed,
        RunEventType.run_cancelled,
        RunEventType.run_timed_out,
    }
)


class RunEvent(DeferredModel):
    seq: int = Field(ge=1, description="the event's place in the run: 1, 2, 3, ... (no gaps)")
    type: RunEventType
    created_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class RunEventPage(DeferredModel):
    """``GET /v1/runs/{id}/events``: the events after ``after``, oldest first; ``next`` is the ``after`` of the
    next request (the last event's seq, or ``after`` again when none came)."""

    events: list[RunEvent]
    next: int = Field(ge=0)
