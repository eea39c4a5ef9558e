"""The Engine interface: what the workflow steps need from an upstream, and nothing more.

Implementations: ``responses`` (default), ``assistants`` and ``chat``. Engines do no run bookkeeping: the
steps persist ids before and after every create call and ask the engine to look upstream before creating
again (exactly-once), engines talk upstream (``chat``, which
has no upstream state, also keeps each completion, so that polling it reports what the call returned).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import BinaryIO, Literal, Protocol

from pydantic import Field

from threadrunner.hosted_tools import McpServer
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import Citation, RunError, RunRecord, Usage
from threadrunner.models.records import GeneratedFile as GeneratedFile  # kept here for the engines

UpstreamStatus = Literal[
    "queued", "in_progress", "requires_action", "completed", "failed", "cancelled", "expired", "incomplete"
]


class ToolSpec(DeferredModel):
    """A function tool as the model sees it."""

    name: str
    description: str
    parameters: dict


class UpstreamToolCall(DeferredModel):
    """A call the model waits on: a function call, or (``kind`` mcp_approval) an MCP server's call that
    waits for a person's approval (``call_id`` is the upstream's ``mcp_approval_request`` id)."""

    call_id: str
    name: str
    arguments: str
    kind: Literal["function", "mcp_approval"] = "function"
    server_label: str | None = None  # mcp_approval: the MCP server


class HostedToolCall(DeferredModel):
    """A call the upstream made itself and finished within the response (an ``mcp_call``): nothing waits on
    it; it is recorded like a function call, with its output. ``approval_request_id``: the approval
    request it ran after (the run's tool call of that id)."""

    call_id: str
    name: str
    arguments: str
    server_label: str
    output: str | None = None
    error: str | None = None
    approval_request_id: str | None = None


class ToolOutput(DeferredModel):
    """What goes back for one call: a function's output, or (``approve`` set) the decision on an MCP
    approval request."""

    call_id: str
    output: str
    approve: bool | None = None
    reason: str | None = None


class RunFile(DeferredModel):
    """A ready upload attached to the run's message."""

    file_id: str
    upstream_file_id: str | None  # None on engines that stage nothing upstream
    filename: str
    content_type: str
    purpose: Literal["code_interpreter", "input", "file_search"]  # file_search: in the thread's store
    key: str  # the upload in S3


class UpstreamRun(DeferredModel):
    """One poll's view of the upstream run."""

    status: UpstreamStatus
    tool_calls: list[UpstreamToolCall] = Field(default_factory=list)
    answer: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: RunError | None = None
    poll_after_ms: int | None = None
    files: list[GeneratedFile] = Field(default_factory=list)  # what the model generated (when completed)
    hosted_calls: list[HostedToolCall] = Field(default_factory=list)  # MCP calls the upstream ran
    citations: list[Citation] = Field(default_factory=list)  # the sources the answer cites (url_citation)


class AssistantDefinition(DeferredModel):
    """An assistant as code (``assistants/<name>.yaml`` with its model and tool specs resolved): what an
    engine that keeps assistants upstream creates there, and updates when the content hash changes."""

    name: str
    description: str = ""
    instructions: str
    model: str
    tools: list[ToolSpec]
    # The vector store of its knowledge documents on the engine that keeps it (the assistants engine fills it
    # in): a new store (a first sync, a re-made one) changes the content hash, so the assistant is updated.
    vector_store_ids: list[str] = Field(default_factory=list)

    @property
    def content_hash(self) -> str:
        # Without documents the hash is what it was before assistants had them: no update of every assistant.
        fields = self.model_dump(mode="json", exclude=None if self.vector_store_ids else {"vector_store_ids"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class HostedTools(DeferredModel):
    """The assistant's hosted tools (threadrunner.hosted_tools), for engines that have them (responses)."""

    web_search: bool = False
    mcp: list[McpServer] = Field(default_factory=list)
    # server_label -> the Secrets Manager secret holding its headers (the allow-list's); the engine reads
    # it when it builds the request, so the headers are in no model, state or log.
    mcp_secrets: dict[str, str] = Field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.web_search or bool(self.mcp)


class RunRequest(DeferredModel):
    """Everything an engine needs to start or continue a run."""

    upstream_thread_id: str
    model: str
    instructions: str  # the assistant's, plus what this run needs (today's date)
    tools: list[ToolSpec]
    metadata: dict[str, str] = Field(default_factory=dict)
    assistant: AssistantDefinition | None = None  # for engines that keep assistants upstream
    files: list[RunFile] = Field(default_factory=list)  # attached to the message
    # Which run this is: engines that replay our own message log (chat) read the thread's log before it.
    run_id: str = ""
    thread_id: str = ""
    deadline_at: datetime | None = None  # a synchronous engine stops waiting for the model then
    hosted: HostedTools = Field(default_factory=HostedTools)  # web_search, MCP servers (responses only)


class Engine(Protocol):
    name: str

    def create_thread(self, metadata: dict[str, str]) -> str:
        """Create the upstream thread/conversation; returns its id."""
        ...

    def delete_thread(self, upstream_thread_id: str) -> None:
        """Delete it; a thread that is already gone is not an error."""
        ...

    def thread_exists(self, upstream_thread_id: str) -> bool:
        """False once the upstream thread/conversation is gone (deleted, or a new server)."""
        ...

    def start(self, request: RunRequest, message: str) -> str:
        """Start the model on a user message; returns the upstream run/response id. Never retried."""
        ...

    def poll(self, run: RunRecord) -> UpstreamRun: ...

    def submit_tool_outputs(self, request: RunRequest, run: RunRecord, outputs: list[ToolOutput]) -> str:
        """Hand tool outputs back; returns the id of the upstream run/response that continues. Never retried."""
        ...

    def find_created(
        self, request: RunRequest, run: RunRecord, round_number: int, call_ids: Sequence[str]
    ) -> str | None:
        """Look before creating again: an earlier attempt at this round (start for 0, tool outputs
        ``call_ids`` for n) returned from its create call but died before recording the id. Returns what it
        created, or None when it created nothing; raises UpstreamOutcomeUnknown when the upstream cannot
        tell (the run then fails rather than run the model twice)."""
        ...

    def cancel(self, run: RunRecord) -> None:
        """Cancel the current upstream run; one that has already ended is not an error."""
        ...

    def close_tool_calls(self, run: RunRecord, call_ids: Sequence[str]) -> None:
        """The run ended with these calls unanswered upstream (cancelled, timed out, failed): answer them
        with an error where the upstream would otherwise refuse the thread's next run."""
        ...


class FileEngine(Protocol):
    """Engines that keep files upstream (responses, assistants): staging, generated files, cleanup."""

    def upload_file(self, filename: str, stream: BinaryIO, content_type: str, expires_seconds: int) -> str:
        """Create the upstream file with the purpose this engine needs; returns its id. Never retried."""
        ...

    def delete_file(self, upstream_file_id: str) -> None:
        """A file that is already gone is not an error."""
        ...

    def download(self, file: GeneratedFile) -> AbstractContextManager[Iterator[bytes]]:
        """The generated file's bytes, streamed in chunks."""
        ...


# A chunk of the answer as the model writes it: (round, chunk index in the round, text).
DeltaSink = Callable[[int, int, str], None]


class StreamEvent(DeferredModel):
    """One event of a response's stream, as much as a relay needs: where it is, and its text if any."""

    sequence_number: int
    delta: str | None = None  # the answer's next chunk (``response.output_text.delta``)
    ended: bool = False  # the response is final: nothing follows


class StreamingEngine(Protocol):
    """Engines that can stream the model's words (runs created with ``"stream": true``)."""

    def streaming(self, on_delta: DeltaSink) -> Engine:
        """This engine, making its model calls streamed: one that answers within the call (chat) hands each
        chunk to ``on_delta`` as it comes; one whose calls run upstream (responses) relays them later
        (:class:`RelayingEngine`)."""
        ...


class StreamIdle(Exception):
    """No stream event came within the timeout: read on later from the last one."""


class RelayingEngine(Protocol):
    """Engines whose streamed model calls go on upstream after the step that made them (responses)."""

    def stream_output(self, run: RunRecord, after: int | None, *, timeout: float) -> Iterator[StreamEvent]:
        """The current response's stream from after sequence number ``after`` (None: from its start), until the
        upstream closes it; StreamIdle when no event comes for ``timeout`` seconds."""
        ...
