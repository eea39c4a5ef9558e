"""Files: the upload URL (S3 presigned POST), the file's status while the stage_file Lambda checks it and
hands it upstream, listing, and deletes (handed to the cleanup Lambda, like thread deletes)."""

from __future__ import annotations

from threadrunner import clock
from threadrunner.assistant_knowledge import DOCUMENT_TYPES, RETRIEVAL_ENGINES
from threadrunner.errors import ConflictError, InvalidRequestError, NotFoundError, QuotaExceededError
from threadrunner.files.inline import check_inlinable
from threadrunner.models.api import CreatedFileOut, CreateFileRequest, FileList, FileOut
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.models.records import FilePurpose, FileRecord, FileStatus, ThreadRecord
from threadrunner.services.context import ApiContext
from threadrunner.services.threads import hand_over_deletion


def create_file(ctx: ApiContext, user_id: str, request: CreateFileRequest) -> CreatedFileOut:
    """Every limit is checked before anything exists: a refused file leaves no record and no URL."""
    limits = ctx.file_settings
    if request.content_type not in limits.allowed_file_types:
        allowed = ", ".join(limits.allowed_file_types)
        raise InvalidRequestError(
            f"content_type {request.content_type} is not allowed here (allowed: {allowed})",
            field="content_type",
        )
    if request.size_bytes > limits.max_file_bytes:
        raise InvalidRequestError(
            f"size_bytes: at most {limits.max_file_bytes} bytes per file", field="size_bytes"
        )
    thread = ctx.threads.get(user_id, request.thread_id)
    if request.purpose is FilePurpose.file_search:
        check_searchable(request.content_type, thread.engine)
    stored = sum(
        record.size_bytes
        for record in ctx.files.all_for_user(user_id)
        if record.status is not FileStatus.failed and record.deleting_at is None
    )
    if stored + request.size_bytes > limits.user_quota_bytes:
        raise QuotaExceededError(
            f"size_bytes: this file would take your files past the {limits.user_quota_bytes} byte quota "
            f"({stored} bytes stored); delete some first",
            field="size_bytes",
        )
    record = FileRecord(
        id=clock.new_id("file"),
        user_id=user_id,
        thread_id=thread.id,
        engine=thread.engine,
        filename=request.filename,
        content_type=request.content_type,
        size_bytes=request.size_bytes,
        purpose=request.purpose,
        created_at=clock.now(),
    )
    ctx.files.create(record)
    upload = ctx.file_urls.upload(
        record.upload_key,
        content_type=record.content_type,
        max_bytes=record.size_bytes,
        seconds=limits.upload_url_seconds,
    )
    return CreatedFileOut(**FileOut.of(record).model_dump(), upload=upload)


def check_searchable(content_type: str, engine: str) -> None:
    """A thread document (purpose file_search) needs an engine with a retrieval store and a type it reads."""
    if engine not in RETRIEVAL_ENGINES:
        raise InvalidRequestError(
            f"purpose file_search: this thread's engine ({engine}) has no retrieval store "
            f"(file_search runs on {' and '.join(RETRIEVAL_ENGINES)})",
            field="purpose",
        )
    searchable = sorted(set(DOCUMENT_TYPES.values()))
    if content_type not in searchable:
        raise InvalidRequestError(
            f"content_type {content_type} cannot be searched (purpose file_search takes: {', '.join(searchable)})",
            field="content_type",
        )


def get_file(ctx: ApiContext, user_id: str, file_id: str) -> FileOut:
    return FileOut.of(ctx.files.get(user_id, file_id))


def list_files(ctx: ApiContext, user_id: str) -> FileList:
    """The caller's files, newest first (bounded by the storage quota, so one page)."""
    records = [record for record in ctx.files.all_for_user(user_id) if record.deleting_at is None]
    return FileList(files=[FileOut.of(record) for record in reversed(records)])


def delete_file(ctx: ApiContext, user_id: str, file_id: str) -> bool:
    """Hide the file at once and hand its removal (upstream, S3, record) to the cleanup Lambda. False when
    there is nothing to delete (never was, someone else's, or already gone): a repeated DELETE is fine."""
    record = ctx.files.find(user_id, file_id)
    if record is None:
        return False
    if record.deleting_at is None:
        ctx.files.mark_deleting(user_id, file_id, clock.now())
    hand_over_deletion(ctx, DeleteThreadsRequest(user_id=user_id, thread_ids=[], file_ids=[file_id]))
    return True


def files_for_run(ctx: ApiContext, user_id: str, thread: ThreadRecord, file_ids: list[str]) -> list[str]:
    """The files a new run may use: the caller's, of this thread, ready. A pending file is a 409 (the API
    answers at once; wait for ``ready`` and post again), a failed one or one of another thread a 422. On a
    chat thread they must be text files within the inline limit (files/inline.py), else a 422 naming one."""
    limit = ctx.file_settings.max_files_per_run
    if len(file_ids) > limit:
        raise InvalidRequestError(f"file_ids: at most {limit} files per run", field="file_ids")
    if len(set(file_ids)) != len(file_ids):
        raise InvalidRequestError("file_ids: a file is listed twice", field="file_ids")
    records = []
    for index, file_id in enumerate(file_ids):
        field = f"file_ids.{index}"
        try:
            record = ctx.files.get(user_id, file_id)
        except NotFoundError:
            raise NotFoundError(f"file {file_id} not found") from None
        if record.thread_id != thread.id:
            raise InvalidRequestError(f"{field}: file {file_id} belongs to another thread", field=field)
        if record.status is FileStatus.failed:
            raise InvalidRequestError(f"{field}: file {file_id} failed: {record.reason}", field=field)
        if record.status is FileStatus.pending:
            raise ConflictError(f"file {file_id} is not ready yet; try again once it is", field=field)
        records.append(record)
    if thread.engine == "chat":
        check_inlinable(records, ctx.file_settings.chat_inline_bytes)
    return file_ids
