"""What we store in DynamoDB. Keys are derived here; stores add nothing but I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel


class RunStatus(StrEnum):
    queued = "queued"
    in_progress = "in_progress"
    requires_action = "requires_action"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.completed, RunStatus.failed, RunStatus.cancelled, RunStatus.timed_out}
)


class Record(DeferredModel):
    model_config = ConfigDict(extra="ignore")


class Usage(DeferredModel):
    """Tokens as the upstream bills them: cached tokens are part of the prompt tokens (billed at the cached
    rate), reasoning tokens part of the completion tokens."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage.model_validate(
            {name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields}
        )


class RunError(DeferredModel):
    code: str
    message: str


class ThreadRecord(Record):
    """One conversation of one user with one assistant for one purpose."""

    id: str
    user_id: str
    assistant: str
    purpose: str
    engine: str
    upstream_thread_id: str | None = None  # the conversation (responses) or thread (assistants) id
    active_run_id: str | None = None
    # Runs waiting for the lock, first in line first (POST .../runs with if_busy=enqueue).
    queue: list[str] = Field(default_factory=list)
    created_at: datetime
    last_activity_at: datetime
    expires_at: int  # epoch seconds: the DynamoDB TTL attribute
    # Set by DELETE: the thread is hidden from reads while threadrunner.cleanup removes it.
    deleting_at: datetime | None = None
    # The thread's own documents (files of purpose file_search): its upstream vector store, made on first use.
    vector_store_id: str | None = None

    def is_fresh(self, now: datetime, max_age_hours: int) -> bool:
        age = (now - self.last_activity_at).total_seconds()
        return age < max_age_hours * 3600 and self.expires_at > now.timestamp()


class ToolCallSummary(DeferredModel):
    call_id: str
    name: str
    arguments: str
    # A short form, valid JSON: the output, or when longer than 500 characters a JSON object saying it was cut
    # (threadrunner.tool_summaries); the full output is in the ledger.
    output: str | None = None
    output_truncated: bool = False
    is_error: bool = False
    runs_on: str = "server"  # client: the application answered it (POST /v1/runs/{id}/tool_outputs)
    approval: ApprovalDecision | None = None  # a server tool with approval: required
    server_label: str | None = None  # runs_on "mcp": the MCP server that ran it (threadrunner.hosted_tools)


class ActionType(StrEnum):
    """What a run in requires_action waits for from the application."""

    submit_tool_outputs = "submit_tool_outputs"  # client tools: POST /v1/runs/{id}/tool_outputs
    approve_tool_calls = "approve_tool_calls"  # approval gates: POST /v1/runs/{id}/approvals


class RequiredAction(DeferredModel):
    """The calls of the current round the run waits on (Check run sets it; Wait for the application stores
    the task token; the API answers it and hands the token back with SendTaskSuccess)."""

    type: ActionType
    round: int
    call_ids: list[str]
    expires_at: datetime
    task_token: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    answer_digest: str | None = None  # of the accepted submission: its repeat is answered, not refused
    # of the accepted approvals when the same wait went on to the round's client tools
    approvals_digest: str | None = None


class ApprovalDecision(DeferredModel):
    """Who decided on a call that needs approval, and when."""

    approved: bool
    reason: str | None = None
    decided_by: str
    decided_at: datetime


class OutputFile(DeferredModel):
    """A file the model generated, copied to S3 by Collect outputs."""

    name: str
    key: str  # outputs/<thread id>/<run id>/<name>
    size_bytes: int
    content_type: str
    upstream_file_id: str | None = None  # a Files API copy (assistants engine), deleted with the thread


class RunMetrics(DeferredModel):
    """What a run's ending measured, recorded once (the Finish run that records it first wins)."""

    status: RunStatus
    duration_seconds: float | None = None  # started -> ended; None when it never started
    queue_wait_seconds: float | None = None  # created -> started
    tool_calls: int = 0
    tool_errors: int = 0
    estimated_cost_usd: float | None = None  # None: the model has no price (threadrunner.pricing)
    error: str | None = None  # the error code, when it did not complete


class GeneratedFile(DeferredModel):
    """A file the model produced upstream: a container file (``container_id``) or a Files API file."""

    name: str
    file_id: str
    container_id: str | None = None


class Citation(DeferredModel):
    """A source the answer cites: a file (``file_id``, ``filename``, the ``quote`` it took) or a web page
    (``url``, ``title``: the Responses ``url_citation`` annotations of web_search)."""

    type: Literal["file", "url"]
    file_id: str | None = None
    filename: str | None = None
    url: str | None = None
    title: str | None = None
    quote: str | None = None


class StreamCursor(DeferredModel):
    """How far Check run relayed a response's stream: the last ``sequence_number`` relayed (None: nothing yet),
    and whether the stream said the response ended."""

    response_id: str
    after: int | None = None
    ended: bool = False


class RunPlace(DeferredModel):
    """Where a run belongs, without its history (RunStore.place): what each tool step needs. A round of 200 calls
    puts 200 summaries in the run item; 200 tool steps reading all of them would read the round 200 times."""

    thread_id: str
    user_id: str
    assistant: str


class RunRecord(Record):
    id: str
    thread_id: str
    user_id: str
    assistant: str
    engine: str
    model: str
    status: RunStatus = RunStatus.queued
    message: str
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    deadline_at: datetime
    execution_arn: str | None = None
    upstream_thread_id: str | None = None
    # One upstream response per round: round 0 answers the message, round n answers tool outputs n.
    response_ids: list[str] = Field(default_factory=list)
    # The round whose create call went out but whose id is not yet recorded (at-most-once creates).
    pending_round: int | None = None
    # Its create call timed out or lost its connection: it may still land upstream, so never look and redo.
    pending_round_unknown: bool = False
    round_started_at: datetime | None = None  # when the current round's upstream response was created
    # A round stuck in the upstream's queue is cancelled and started again once (Check run).
    queued_restarts: int = 0
    restarting_round: bool = False  # cancelled for being stuck; started again once the cancel has landed
    # A long message is kept in S3 with the thread's log (MessageStore.keep_run_message), not in here.
    message_key: str | None = None
    tool_calls: list[ToolCallSummary] = Field(default_factory=list)
    answer: str | None = None
    usage_by_response: dict[str, Usage] = Field(default_factory=dict)
    error: RunError | None = None
    # POST /v1/runs/{id}/cancel on a started run: Check run cancels upstream and ends it cancelled.
    cancel_requested: bool = False
    # Set when Start run moved the run to the fallback engine (``engine`` is then the fallback's).
    fallback_from: str | None = None
    fallback_reason: str | None = None
    file_ids: list[str] = Field(default_factory=list)  # the caller's uploads attached to the message
    output_files: list[OutputFile] = Field(default_factory=list)
    # Check run keeps what the finished response produced (its answer, and the files to copy), so Collect
    # outputs does not fetch the response again: ``outputs_of`` names that response.
    generated_files: list[GeneratedFile] = Field(default_factory=list)
    outputs_of: str | None = None
    metrics: RunMetrics | None = None  # set once the run has ended (threadrunner.accounting)
    # requires_action with client tools or calls waiting for approval: what the application must answer.
    required_action: RequiredAction | None = None
    # "stream": true: the answer's chunks are logged as message.delta events (workflow/stream_relay.py), and
    # how far the current response's stream was relayed.
    stream: bool = False
    stream_cursor: StreamCursor | None = None
    # Set through the Assistants-compatible API (threadrunner/compat): instructions that replace the
    # assistant's for this run, more appended to them, and the caller's metadata.
    instructions: str | None = None
    additional_instructions: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    tools: list[dict[str, Any]] | None = (
        None  # the run's own tools (Assistants shape), instead of its assistant's
    )
    # The sources the finished answer cites (Check run keeps them with the answer).
    citations: list[Citation] = Field(default_factory=list)
    # What the run went without, e.g. "file_search" on a fallback engine that has no retrieval store.
    degraded: list[str] = Field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return sum(self.usage_by_response.values(), Usage())

    @property
    def round(self) -> int:
        """The round whose upstream response is current (0 answers the message)."""
        return len(self.response_ids) - 1

    @property
    def current_response_id(self) -> str | None:
        return self.response_ids[-1] if self.response_ids else None


class ToolCallRecord(Record):
    """The tool-call ledger: one item per call, so a retried step reuses the output."""

    run_id: str
    call_id: str
    round: int
    name: str
    arguments: str
    output: str | None = None
    is_error: bool = False
    truncated: bool = False
    full_output_key: str | None = None  # S3: the whole output, when ``output`` was cut for the model
    # "client": the application runs it; "approval": a server tool waiting for a person's decision.
    waits_for: str | None = None
    approval: ApprovalDecision | None = None
    # "mcp": an MCP server the upstream called runs it (threadrunner.hosted_tools): no Lambda runs it, and
    # an approval goes back upstream as an mcp_approval_response, not as a function output.
    runs_on: str = "server"
    server_label: str | None = None
    answered_by: str | None = None  # the user who posted a client tool's output
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None


class MessageRole(StrEnum):
    user = "user"
    assistant = "assistant"
    tool = "tool"


class MessageRecord(Record):
    """One entry of a thread's own message log (it survives the upstream forgetting the conversation)."""

    thread_id: str
    message_id: str  # ``<run id>.<nnnn>``: sorts by run creation, then by position within the run
    user_id: str
    run_id: str
    role: MessageRole
    created_at: datetime
    content: str | None = None  # None when the body was offloaded to S3
    content_key: str | None = None  # the S3 key of an offloaded body
    tool_call: ToolCallSummary | None = None  # role tool: which call, its arguments, a short output
    citations: list[Citation] = Field(default_factory=list)  # role assistant: what the answer cites


class PendingCleanup(Record):
    """What is left to clean of one thread, written before cleaning starts and removed when it is done,
    so a cleanup that keeps failing is retried by the sweep and never forgotten."""

    user_id: str
    thread_id: str
    assistant: str
    purpose: str
    engine: str
    upstream_thread_id: str | None = None
    vector_store_id: str | None = None  # the thread's documents' store, upstream
    requested_at: datetime
    attempts: int = 0
    last_error: str | None = None


class FileStatus(StrEnum):
    pending = "pending"  # the upload URL was handed out; staging has not finished
    ready = "ready"
    failed = "failed"


class FilePurpose(StrEnum):
    """What the model does with a file: run code on it, read it as part of the message, or search it (a
    thread document: in the thread's vector store, searched by every run of the thread)."""

    code_interpreter = "code_interpreter"
    input = "input"
    file_search = "file_search"


# Where a presigned POST puts an upload (its exact key only): a hand-over to staging, deleted once copied.
UPLOADS_PREFIX = "uploads/"
# Uploads through the Assistants-compatible API: compat/<user>/<file id> (threadrunner/compat/files_api.py).
COMPAT_FILES_PREFIX = "compat/"
# A staged file's bytes: stage_file's copy of the upload it checked, made once. No presigned POST can write
# here, so replaying one (within its expiry) cannot change a file once it is staged.
STAGED_PREFIX = "staged/"


class FileRecord(Record):
    """One upload: ``file#<id>`` in the threads table (partition ``user_id``). It belongs to one thread and
    goes with it."""

    id: str
    user_id: str
    thread_id: str
    engine: str  # the thread's: it decides how the file is staged upstream
    filename: str
    content_type: str
    size_bytes: int  # as declared; the presigned POST refuses anything larger
    purpose: FilePurpose
    status: FileStatus = FileStatus.pending
    reason: str | None = None  # why staging failed
    created_at: datetime
    # The staging attempt claims the file until its Lambda's deadline (threadrunner.files.staging).
    staging_until: datetime | None = None
    # When staging copied the upload to ``key``: from then on the file's bytes are that copy, never the upload.
    copied_at: datetime | None = None
    staged_at: datetime | None = None
    upstream_file_id: str | None = None
    deleting_at: datetime | None = None  # DELETE: hidden while threadrunner.cleanup removes it

    @property
    def key(self) -> str:
        """The file's own bytes once staged (what runs inline and what went upstream)."""
        return f"{STAGED_PREFIX}{self.user_id}/{self.id}"

    @property
    def upload_key(self) -> str:
        """Where the presigned POST puts the upload, before staging copies it to ``key``."""
        return f"{UPLOADS_PREFIX}{self.user_id}/{self.id}"
