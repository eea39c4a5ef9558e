"""The HTTP API's bodies. Requests forbid unknown fields, so a typo is a 422 that names it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from threadrunner.execution_trace import ExecutionStatus
from threadrunner.files.urls import PresignedPost
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import (
    ApprovalDecision,
    Citation,
    FilePurpose,
    FileRecord,
    FileStatus,
    MessageRecord,
    RunError,
    RunMetrics,
    RunRecord,
    ThreadRecord,
    Usage,
)
from threadrunner.models.usage import BudgetName

FILE_ID_PATTERN = r"^file_[0-9a-z]{26}$"
THREAD_ID_PATTERN = r"^thr_[0-9a-z]{26}$"
RUN_ID_PATTERN = r"^run_[0-9a-z]{26}$"
# A user is a token's subject: at most this long (a DynamoDB key takes 2,048 bytes; 256 characters fit).
MAX_USER_ID_CHARS = 256
# Blank, as the server counts it (Unicode White_Space), as a regular expression class and as characters.
BLANK = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
BLANK_CHARACTERS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_NOT_IN_FILENAMES = r"/\\\x00-\x1f"  # no folders, no control characters


class _Request(DeferredModel):
    # Values are taken as sent (nothing stripped), so the documented patterns and lengths are the whole rule.
    model_config = ConfigDict(extra="forbid")


class CreateThreadRequest(_Request):
    # The document lists the deployment's assistants (threadrunner.http.openapi_document).
    assistant: str = Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$", examples=["data-analyst"]
    )
    # Words, dots, colons, slashes, dashes; spaces only between them.
    purpose: str = Field(
        default="default",
        min_length=1,
        max_length=100,
        pattern=r"^[\w.:/-]([\w .:/-]*[\w.:/-])?$",
        examples=["weekly-report"],
    )
    # Reuse the current thread only while its last activity is younger than this (default: per environment).
    max_age_hours: int | None = Field(default=None, gt=0, le=24 * 365)


MAX_MESSAGE_CHARS = 400_000


class CreateRunRequest(_Request):
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


_FILENAME = rf"^[^{_NOT_IN_FILENAMES}{BLANK}]([^{_NOT_IN_FILENAMES}]*[^{_NOT_IN_FILENAMES}{BLANK}])?$"


class CreateFileRequest(_Request):
    thread_id: str = Field(pattern=THREAD_ID_PATTERN)
    # No folders or control characters, not starting or ending blank.
    filename: str = Field(
        min_length=1,
        max_length=255,
        pattern=_FILENAME,
        examples=["sales.csv"],
    )
    # The document lists the environment's allowed types, and the largest size (openapi_document).
    content_type: str = Field(max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$", examples=["text/csv"])
    size_bytes: int = Field(gt=0, examples=[2048])
    purpose: FilePurpose = FilePurpose.code_interpreter


class FileOut(DeferredModel):
    id: str
    thread_id: str
    filename: str
    content_type: str
    size_bytes: int
    purpose: FilePurpose
    status: FileStatus
    reason: str | None = None  # why it failed
    created_at: datetime
    staged_at: datetime | None = None

    @classmethod
    def of(cls, record: FileRecord) -> FileOut:
        return cls(
            id=record.id,
            thread_id=record.thread_id,
            filename=record.filename,
            content_type=record.content_type,
            size_bytes=record.size_bytes,
            purpose=record.purpose,
            status=record.status,
            reason=record.reason,
            created_at=record.created_at,
            staged_at=record.staged_at,
        )


class CreatedFileOut(FileOut):
    """POST the file to ``upload.url`` as multipart/form-data: every one of ``upload.fields``, then ``file``."""

    upload: PresignedPost


class FileList(DeferredModel):
    files: list[FileOut]


class OutputFileOut(DeferredModel):
    """A file the run generated; ``url`` is a presigned GET that works until ``expires_at``."""

    name: str
    size_bytes: int
    content_type: str
    url: str
    expires_at: datetime


class ThreadOut(DeferredModel):
    id: str
    assistant: str
    purpose: str
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime
    active_run_id: str | None = None
    queued_run_ids: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, thread: ThreadRecord) -> ThreadOut:
        return cls(
            id=thread.id,
            assistant=thread.assistant,
            purpose=thread.purpose,
            created_at=thread.created_at,
            last_activity_at=thread.last_activity_at,
            expires_at=datetime.fromtimestamp(thread.expires_at, tz=thread.created_at.tzinfo),
            active_run_id=thread.active_run_id,
            queued_run_ids=thread.queue,
        )


class ThreadPage(DeferredModel):
    """Newest first; pass ``next`` back as ``after`` for the following page (None: that was the last)."""

    threads: list[ThreadOut]
    next: str | None


class MessageToolCallOut(DeferredModel):
    call_id: str
    name: str
    arguments: str
    is_error: bool
    # The message's content is then {"truncated": true, "preview", "size_chars"} (threadrunner.tool_summaries).
    output_truncated: bool = False


class MessageOut(DeferredModel):
    id: str
    run_id: str
    role: str
    content: str | None
    tool_call: MessageToolCallOut | None
    created_at: datetime
    citations: list[Citation] = Field(default_factory=list)  # an answer's sources

    @classmethod
    def of(cls, message: MessageRecord) -> MessageOut:
        call = message.tool_call
        return cls(
            id=message.message_id,
            run_id=message.run_id,
            role=message.role,
            content=message.content,
            tool_call=MessageToolCallOut(
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
                is_error=call.is_error,
                output_truncated=call.output_truncated,
            )
            if call
            else None,
            created_at=message.created_at,
            citations=message.citations,
        )


class MessagePage(DeferredModel):
    """Oldest first; pass ``next`` back as ``after`` for the following page (None: that was the last)."""

    messages: list[MessageOut]
    next: str | None


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


class ErrorOut(DeferredModel):
    """Every error the API answers: a code, a message and, for bad input, the field."""

    code: str
    message: str
    field: str | None = None
    active_run_id: str | None = None


class BudgetExceededOut(ErrorOut):
    """429: which budget, its limit, the caller's usage against it, and when it resets (next UTC midnight)."""

    budget: BudgetName
    limit: float
    used: float
    resets_at: datetime


class GatewayErrorOut(DeferredModel):
    """What every 401 and 429 body has: API Gateway answers these itself too (a refused token, its throttling)
    with only ``{"message": ...}``; ours are ErrorOut (or BudgetExceededOut), which add ``code`` and more."""

    message: str
