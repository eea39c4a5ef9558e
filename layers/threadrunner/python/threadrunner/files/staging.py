"""Staging an upload: S3 ObjectCreated on ``uploads/`` -> a copy of it as the file's own bytes -> checked ->
the upstream file -> ready (or failed, with a reason). Runs in functions/stage_file.

A presigned POST stays usable until it expires, so the upload key can be written again after staging. The
file's bytes are therefore never the upload itself: the attempt that claims the file copies the upload to
``staged/<user>/<file id>`` (once: a retry keeps the copy it finds), deletes the upload, and checks and hands
upstream only that copy, which no presigned POST can write. An upload arriving for a file that is no longer
pending (a replayed POST, a repeated event) is deleted and changes nothing.

S3 delivers events at least once, and Lambda retries failed ones: one upstream file per upload all the
same. The attempt that stages claims the file first (a conditional write) until its Lambda's deadline;
others leave it alone. A claim past its deadline means that attempt died, maybe mid-upload, so the outcome
is unknown: the file fails (upload again) rather than risk a second upstream copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import cast

from threadrunner import aws, clock
from threadrunner.engines.base import FileEngine
from threadrunner.errors import UpstreamError, UpstreamRateLimited, UpstreamUnavailable
from threadrunner.files.types import SNIFF_BYTES, mismatch
from threadrunner.models.records import UPLOADS_PREFIX, FilePurpose, FileRecord, FileStatus
from threadrunner.settings import FileSettings, file_settings, storage_settings, upstream_settings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.files import FileStore
from threadrunner.stores.threads import ThreadStore

logger = logging.getLogger(__name__)

# Engines that keep files upstream; others (chat) read the staged copy from S3 when a run needs it.
FILE_ENGINES = ("responses", "assistants")


@dataclass(frozen=True)
class StagingContext:
    files: FileStore
    blobs: BlobStore
    engine: Callable[[str], FileEngine | None]  # None: the engine keeps no files upstream
    settings: FileSettings
    threads: ThreadStore | None = None  # where a thread's documents' store is recorded (purpose file_search)


@cache
def default_context() -> StagingContext:
    from threadrunner.engines import engine_for

    storage = storage_settings()
    return StagingContext(
        files=FileStore(aws.table(storage.threads_table)),
        blobs=BlobStore(aws.client("s3"), storage.bucket),
        engine=lambda name: (
            cast(FileEngine, engine_for(name, upstream_settings())) if name in FILE_ENGINES else None
        ),
        settings=file_settings(),
        threads=ThreadStore(aws.table(storage.threads_table)),
    )


def parse_key(key: str) -> tuple[str, str] | None:
    """``uploads/<user>/<file id>`` -> (user, file id); None for anything else."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    user_id, _, file_id = key.removeprefix(UPLOADS_PREFIX).rpartition("/")
    if not user_id or not file_id.startswith("file_"):
        return None
    return user_id, file_id


def stage(key: str, deadline: datetime, ctx: StagingContext) -> FileStatus | None:
    """Stage the upload at ``key``; returns the file's status afterwards (None: no such file any more).
    Raises on a passing upstream trouble, so that the event is retried."""
    parsed = parse_key(key)
    if parsed is None:
        logger.warning("not an upload key", extra={"key": key})
        return None
    user_id, file_id = parsed
    record = ctx.files.find(user_id, file_id)
    if record is None or record.deleting_at is not None:
        ctx.blobs.delete(key)  # deleted before its upload arrived: keep nothing
        return None
    if record.status is not FileStatus.pending:
        # A repeated event, or the presigned POST replayed: the file keeps the bytes it was staged with.
        ctx.blobs.delete(key)
        return record.status
    if not ctx.files.claim_staging(user_id, file_id, deadline):
        return _claimed_elsewhere(record, ctx)
    claimed = ctx.files.find(user_id, file_id)  # as of the claim: an earlier attempt may have made the copy
    if claimed is None:
        return None
    record = claimed
    if not _keep_copy(record, ctx):
        return _fail(record, "the upload is no longer stored; upload the file again", ctx)
    reason = _check(record, ctx)
    if reason is not None:
        return _fail(record, reason, ctx)
    engine = ctx.engine(record.engine)
    upstream_file_id = None
    if engine is not None:
        upstream_file_id = _upload(record, engine, ctx)
        if upstream_file_id is None:
            return FileStatus.failed
        if record.purpose is FilePurpose.file_search and not _add_document(
            record, upstream_file_id, engine, ctx
        ):
            return FileStatus.failed
    if not ctx.files.mark_ready(user_id, file_id, upstream_file_id, clock.now()):
        # The file was deleted meanwhile: leave nothing behind, upstream or here.
        if engine is not None and upstream_file_id is not None:
            engine.delete_file(upstream_file_id)
        ctx.blobs.delete(record.key)
        return None
    logger.info("file staged", extra={"file_id": file_id, "engine": record.engine})
    return FileStatus.ready


def _keep_copy(record: FileRecord, ctx: StagingContext) -> bool:
    """Copy the upload to the file's own key, unless an earlier attempt did (a retry keeps that copy, and
    whatever a replay put at the upload key since is never used), then delete the upload. False when the
    upload is gone and was never copied. Recorded on the file rather than asked of S3, which answers a
    missing key with 403 to a role that may not list the bucket."""
    if record.copied_at is None:
        if not ctx.blobs.copy(record.upload_key, record.key):
            return False
        ctx.files.mark_copied(record.user_id, record.id, clock.now())
    ctx.blobs.delete(record.upload_key)
    return True


def _upload(record: FileRecord, engine: FileEngine, ctx: StagingContext) -> str | None:
    """The upstream file id of the staged copy; None when the upstream refused it (the file has failed)."""
    try:
        body = ctx.blobs.open(record.key)
        try:
            return engine.upload_file(
                record.filename, body, record.content_type, ctx.settings.upstream_file_seconds
            )
        finally:
            body.close()
    except (UpstreamRateLimited, UpstreamUnavailable):
        ctx.files.release_staging(record.user_id, record.id)  # nothing was created: the retry stages it
        raise
    except UpstreamError as error:  # refused, or an outcome we cannot know (a timed-out create)
        _fail(record, f"the upstream did not take the file: {error}", ctx)
        return None


def _add_document(record: FileRecord, upstream_file_id: str, engine: FileEngine, ctx: StagingContext) -> bool:
    """A thread document: into the thread's vector store (files/thread_documents.py). False when the
    upstream refused it (the file has failed); an outage deletes the upload and is raised (a retry stages
    the file again)."""
    from threadrunner.files.thread_documents import add_document

    if ctx.threads is None:
        raise RuntimeError("this staging has no thread store, and the file is a thread document")
    try:
        add_document(
            record, upstream_file_id, engine, ctx.threads, expires_seconds=ctx.settings.upstream_file_seconds
        )
    except (UpstreamRateLimited, UpstreamUnavailable):
        engine.delete_file(upstream_file_id)
        ctx.files.release_staging(record.user_id, record.id)
        raise
    except UpstreamError as error:  # not indexable, or the thread went away meanwhile
        engine.delete_file(upstream_file_id)
        _fail(record, f"the upstream could not search the file: {error}", ctx)
        return False
    return True


def _check(record: FileRecord, ctx: StagingContext) -> str | None:
    """Why the staged copy may not be used: its real size and first bytes against what was declared."""
    size, head = ctx.blobs.size_and_head(record.key, SNIFF_BYTES)
    if size > record.size_bytes:
        return f"the upload has {size} bytes, more than the {record.size_bytes} declared"
    if size > ctx.settings.max_file_bytes:
        return f"the upload has {size} bytes, more than the {ctx.settings.max_file_bytes} allowed"
    if record.content_type not in ctx.settings.allowed_file_types:
        return f"{record.content_type} files are not allowed"
    return mismatch(record.content_type, head)


def _claimed_elsewhere(record: FileRecord, ctx: StagingContext) -> FileStatus | None:
    current = ctx.files.find(record.user_id, record.id)
    if current is None:
        return None
    until = current.staging_until
    if current.status is FileStatus.pending and until is not None and until < clock.now():
        return _fail(current, "staging was interrupted; upload the file again", ctx)
    if current.status is FileStatus.pending and current.copied_at is not None:
        # Another attempt copied the upload already: what is at the upload key now is a replay, never used.
        ctx.blobs.delete(current.upload_key)
    return current.status  # another attempt is staging it now


def _fail(record: FileRecord, reason: str, ctx: StagingContext) -> FileStatus:
    """A failed file is never used: neither its upload nor its copy is kept."""
    logger.info("file refused", extra={"file_id": record.id, "reason": reason})
    ctx.files.mark_failed(record.user_id, record.id, reason)
    ctx.blobs.delete(record.upload_key)
    ctx.blobs.delete(record.key)
    return FileStatus.failed
