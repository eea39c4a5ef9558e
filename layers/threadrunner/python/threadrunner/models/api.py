"""The HTTP API's bodies: threads, files, messages and errors, and what every request body shares (the id
patterns, blank characters, ``RequestBody``). Runs' bodies are models/api_runs.py. Requests forbid unknown
fields, so a typo is a 422 that names it."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from threadrunner.files.urls import PresignedPost
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import (
    Citation,
    FilePurpose,
    FileRecord,
    FileStatus,
    MessageRecord,
    ThreadRecord,
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


class RequestBody(DeferredModel):
    """A request body: a field it does not define is refused."""

    # Values are taken as sent (nothing stripped), so the documented patterns and lengths are the whole rule.
    model_config = ConfigDict(extra="forbid")


class CreateThreadRequest(RequestBody):
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


_FILENAME = rf"^[^{_NOT_IN_FILENAMES}{BLANK}]([^{_NOT_IN_FILENAMES}]*[^{_NOT_IN_FILENAMES}{BLANK}])?$"


class CreateFileRequest(RequestBody):
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
