"""An Assistants v2 run and its steps as the emulator keeps them (``StoredRun``, ``StoredStep``) and as they go
on the wire (``run_resource``, ``step_resource``), and the bookkeeping a turn does on them: steps begun and
ended, token usage counted. How a run plays its turns is local/emulator/runs.py."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from threadrunner.clock import epoch, now

from local.emulator import policy
from local.emulator.beta_bodies import CreateRunBody
from local.emulator.items import new_id
from local.emulator.script import Plan
from local.emulator.threads import StoredThread

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")


@dataclass
class StoredStep:
    id: str
    created_at: int
    type: str  # message_creation | tool_calls
    details: dict[str, Any]
    status: str = "in_progress"
    usage: dict[str, int] | None = None
    last_error: dict[str, str] | None = None
    completed_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None


@dataclass
class StoredRun:
    id: str
    thread: StoredThread
    assistant_id: str
    created_at: int
    body: CreateRunBody
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    plan: Plan
    polls_left: int
    expires_at: float | None
    status: str = "queued"
    started_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    last_error: dict[str, str] | None = None
    incomplete_details: dict[str, str] | None = None
    pending_calls: list[dict[str, Any]] = field(default_factory=list)  # what requires_action asks for
    calls: list[policy.ToolCall] = field(default_factory=list)  # every call of the run, answered or not
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StoredStep] = field(default_factory=list)
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )

    @property
    def final(self) -> bool:
        return self.status not in ACTIVE

    @property
    def function_tools(self) -> list[policy.FunctionTool]:
        return [
            policy.FunctionTool(
                tool["function"]["name"],
                tool["function"].get("description") or "",
                tool["function"].get("parameters"),
            )
            for tool in self.tools
            if tool["type"] == "function"
        ]


def run_resource(run: StoredRun) -> dict[str, Any]:
    """The Run object on the wire."""
    body = run.body
    required_action = None
    if run.status == "requires_action":
        required_action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": run.pending_calls},
        }
    return {
        "id": run.id,
        "object": "thread.run",
        "created_at": run.created_at,
        "thread_id": run.thread.id,
        "assistant_id": run.assistant_id,
        "status": run.status,
        "required_action": required_action,
        "last_error": run.last_error,
        "expires_at": None if run.final else math.ceil(run.expires_at or 0),
        "started_at": run.started_at,
        "cancelled_at": run.cancelled_at,
        "failed_at": run.failed_at,
        "completed_at": run.completed_at,
        "incomplete_details": run.incomplete_details,
        "model": run.model,
        "instructions": run.instructions,
        "tools": run.tools,
        "metadata": body.metadata or {},
        # The spec: null until the run is final; then the tokens of all its turns.
        "usage": dict(run.usage) if run.final else None,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "max_prompt_tokens": body.max_prompt_tokens,
        "max_completion_tokens": body.max_completion_tokens,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": body.tool_choice or "auto",
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "response_format": "auto",
    }


# The field a step's end is stamped in, by its final status.
STEP_ENDED_AT = {
    "completed": "completed_at",
    "cancelled": "cancelled_at",
    "failed": "failed_at",
    "expired": "expired_at",
}


def end_step(step: StoredStep, status: str) -> None:
    """The step ends with ``status``, stamped now (``completed_at``, ``cancelled_at``, ...)."""
    step.status = status
    setattr(step, STEP_ENDED_AT[status], epoch(now()))


def new_step(kind: str, details: dict[str, Any]) -> StoredStep:
    """A step begun now (``in_progress``)."""
    return StoredStep(id=new_id("step"), created_at=epoch(now()), type=kind, details=details)


def turn_usage(run: StoredRun) -> dict[str, int]:
    """Deterministic token counts: a token is about four characters of what the model read and wrote."""
    seen = (
        run.instructions + json.dumps(run.thread.messages) + json.dumps(run.tools) + json.dumps(run.outputs)
    )
    plan = run.plan
    written = json.dumps(getattr(plan, "calls", None) or getattr(plan, "text", ""))
    prompt, completion = math.ceil(len(seen) / 4), math.ceil(len(written) / 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def add_usage(run: StoredRun, usage: dict[str, int]) -> None:
    """Count a turn's tokens in the run's usage."""
    for name, value in usage.items():
        run.usage[name] += value


def step_resource(step: StoredStep, run: StoredRun) -> dict[str, Any]:
    """The RunStep object on the wire."""
    return {
        "id": step.id,
        "object": "thread.run.step",
        "created_at": step.created_at,
        "assistant_id": run.assistant_id,
        "thread_id": run.thread.id,
        "run_id": run.id,
        "type": step.type,
        "status": step.status,
        "step_details": step.details,
        "last_error": step.last_error,
        "expired_at": step.expired_at,
        "cancelled_at": step.cancelled_at,
        "failed_at": step.failed_at,
        "completed_at": step.completed_at,
        "metadata": {},
        "usage": step.usage if step.status != "in_progress" else None,
    }
