"""The HTTP API's run bodies: creating a run, a run and its tool calls, the application's answers to a run
that waits (tool outputs, approvals), a thread's page of runs and a run's execution trace. The bodies of
threads, files, messages and errors, and what every request shares, are models/api.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from threadrunner.execution_trace import ExecutionStatus
from threadrunner.models.api import BLANK, BLANK_CHARACTERS, FILE_ID_PATTERN, OutputFileOut, RequestBody
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import (
    ApprovalDecision,
    Citation,
    RunError,
    RunMetrics,
    RunRecord,
    Usage,
)

MAX_MESSAGE_CHARS = 400_000


class CreateRunRequest(RequestBody):
    # Long messages are fine (the workflow state carries ids only; the thread's log keeps them in S3). This is
    # the ceiling; each environment may set a lower limit (max_message_chars), which its document states.
    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        json_schema_extra={"not": {"pattern": f"^[{BLANK}]*$"}},  # not blank: checked by _not_blank
        description="not blank",
    )
    # While another run is active: "reject" answers 409, "enqueue" queues this run to start after it.
    if_busy: Literal["reject", "enqueue"] = "reject"
    # The caller's ready files of this thread (POST /v1/files); how many per run is set per environment.
    file_ids: list[Annotated[str, Field(pattern=FILE_ID_PATTERN)]] = Field(
        default_factory=list, max_length=100
    )
    # The model's words as it writes them: message.delta events in GET /v1/runs/{id}/events.
    stream: bool = Field(default=False, description="log the answer's chunks as message.delta events")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, message: str) -> str:
        if not message.strip(BLANK_CHARACTERS):
            raise ValueError("the message is blank")
        return message


class ToolCallOut(DeferredModel):
    id: str | None = None  # the call's id: what tool_outputs and approvals name as tool_call_id
    name: str
    arguments: str
    # Valid JSON: the output, or past 500 characters {"truncated": true, "preview", "size_chars"}.
    output: str | None
    output_truncated: bool = False
    runs_on: str = (
        "server"  # client: the application ran it (POST /v1/runs/{id}/tool_outputs); mcp: an MCP server
    )
    approval: ApprovalDecision | None = None  # who approved (or denied) the call, when, and why
    server_label: str | None = None  # runs_on mcp: which MCP server ran it


class RequiredCallOut(DeferredModel):
    id: str
    name: str
    arguments: str


class RequiredActionOut(DeferredModel):
    """What a run in requires_action waits for: submit_tool_outputs (POST /v1/runs/{id}/tool_outputs) or
    approve_tool_calls (POST /v1/runs/{id}/approvals), every call at once, before expires_at."""

    type: str
    tool_calls: list[RequiredCallOut]
    expires_at: datetime

    @classmethod
    def of(cls, run: RunRecord) -> RequiredActionOut | None:
        action = run.required_action
        if action is None or action.answered_at is not None or run.status != "requires_action":
            return None
        calls = {call.call_id: call for call in run.tool_calls}
        return cls(
            type=action.type,
            tool_calls=[
                RequiredCallOut(id=call_id, name=calls[call_id].name, arguments=calls[call_id].arguments)
                for call_id in action.call_ids
                if call_id in calls
            ],
            expires_at=action.expires_at,
        )


class ToolOutputIn(DeferredModel):
    model_config = ConfigDict(extra="forbid")

    tool_call_id: str = Field(min_length=1, max_length=256)
    output: str


class SubmitToolOutputsRequest(DeferredModel):
    model_config = ConfigDict(extra="forbid")

    tool_outputs: list[ToolOutputIn] = Field(min_length=1, max_length=128)


class ApprovalIn(DeferredModel):
    model_config = ConfigDict(extra="forbid")

    tool_call_id: str = Field(min_length=1, max_length=256)
    approve: bool
    reason: str | None = Field(default=None, max_length=2000)


class ApprovalsRequest(DeferredModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[ApprovalIn] = Field(min_length=1, max_length=128)


class ExecutionOut(DeferredModel):
    arn: str
    console_url: str


class RunOut(DeferredModel):
    id: str
    thread_id: str
    assistant: str
    model: str
    status: str
    answer: str | None
    tool_calls: list[ToolCallOut]
    usage: Usage
    metrics: RunMetrics | None = None  # once the run has ended: duration, tool calls, estimated cost, ...
    error: RunError | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    execution: ExecutionOut | None
    queue_position: int | None = None  # queued behind the active run: 1 starts next
    cancel_requested: bool = False
    engine: str = ""  # the engine the run runs on; with fallback_from, the fallback that took over
    fallback_from: str | None = None
    fallback_reason: str | None = None
    file_ids: list[str] = Field(default_factory=list)
    files: list[OutputFileOut] = Field(default_factory=list)  # what the run generated
    # requires_action: the client tool calls to answer, or the calls to approve, and until when.
    required_action: RequiredActionOut | None = None
    stream: bool = False  # created with "stream": true (message.delta events)
    citations: list[Citation] = Field(default_factory=list)  # the sources the answer cites
    # What the run went without, e.g. ["file_search"]: it fell back to an engine with no retrieval store.
    degraded: list[str] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        run: RunRecord,
        region: str,
        *,
        queue_position: int | None = None,
        files: list[OutputFileOut] | None = None,
    ) -> RunOut:
        execution = None
        if run.execution_arn:
            execution = ExecutionOut(
                arn=run.execution_arn, console_url=execution_console_url(region, run.execution_arn)
            )
        return cls(
            id=run.id,
            thread_id=run.thread_id,
            assistant=run.assistant,
            model=run.model,
            status=run.status,
            answer=run.answer,
            tool_calls=[
                ToolCallOut(
                    id=c.call_id,
                    name=c.name,
                    arguments=c.arguments,
                    output=c.output,
                    output_truncated=c.output_truncated,
                    runs_on=c.runs_on,
                    approval=c.approval,
                    server_label=c.server_label,
                )
                for c in run.tool_calls
            ],
            usage=run.usage,
            metrics=run.metrics,
            error=run.error,
            created_at=run.created_at,
            started_at=run.started_at,
            completed_at=run.completed_at,
            execution=execution,
            queue_position=queue_position,
            cancel_requested=run.cancel_requested,
            engine=run.engine,
            fallback_from=run.fallback_from,
            fallback_reason=run.fallback_reason,
            file_ids=run.file_ids,
            files=files or [],
            required_action=RequiredActionOut.of(run),
            stream=run.stream,
            citations=run.citations,
            degraded=run.degraded,
        )


def execution_console_url(region: str, execution_arn: str) -> str:
    """The execution in the Step Functions console."""
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


class RunPage(DeferredModel):
    """A thread's runs, newest first; pass ``next`` back as ``after`` for the following page (None: that was
    the last)."""

    runs: list[RunOut]
    next: str | None


class TraceStateOut(DeferredModel):
    """One visit of one state of the run's execution, in the order they were entered. Names, times and error
    names only: what the states took in and gave out (and an error's cause) stays in the service."""

    name: str
    entered_at: datetime
    exited_at: datetime | None = Field(description="None while the state runs")
    duration_ms: int | None = Field(description="None while the state runs")
    error: str | None = Field(default=None, description="the error's name, when the state failed")


class TraceExecutionOut(DeferredModel):
    """The run's Step Functions execution; all None for a run that never got one (queued, or ended first)."""

    arn: str | None
    console_url: str | None = Field(
        description="the execution in the Step Functions console (local stack: this trace)"
    )
    status: ExecutionStatus | None


class RunTraceOut(DeferredModel):
    """``GET /v1/runs/{id}/trace``: the run's execution state by state; ``transitions``: states entered."""

    states: list[TraceStateOut]
    transitions: int = Field(ge=0)
    execution: TraceExecutionOut
