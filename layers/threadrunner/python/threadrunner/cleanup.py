"""Removing a thread and everything that hangs off it, in one place for every way a thread goes away: the
TTL stream (functions/clean_up_thread), the daily sweep (functions/sweep_threads) and deletes requested
through the API (functions/delete_threads). The sweep also repairs runs whose execution died and the locks
they left behind (threadrunner.run_repair, the reconciler's code).

What is left to clean is recorded first (stores/cleanups.py) and forgotten only once all is gone, so a
failing step (typically the upstream refusing to delete the conversation) is retried, never lost. Every
step is idempotent: running a cleanup again after a crash finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from threadrunner import aws, clock, run_repair
from threadrunner.engines import Engine, engine_for
from threadrunner.engines.base import FileEngine
from threadrunner.files.outputs import outputs_prefix
from threadrunner.files.staging import FILE_ENGINES
from threadrunner.files.thread_documents import remove_document, vector_stores
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import (
    COMPAT_FILES_PREFIX,
    FilePurpose,
    FileRecord,
    PendingCleanup,
    RunRecord,
    ThreadRecord,
)
from threadrunner.settings import (
    CleanupSettings,
    cleanup_settings,
    storage_settings,
    upstream_settings,
)
from threadrunner.stores._dynamo import from_item
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.cleanups import CleanupLedger, pending_for
from threadrunner.stores.files import FileStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.usage import UsageStore

logger = logging.getLogger(__name__)

# Who DynamoDB Streams says deleted an item when TTL did it.
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass(frozen=True)
class CleanupContext:
    threads: ThreadStore
    runs: RunStore
    messages: MessageStore
    cleanups: CleanupLedger
    blobs: BlobStore
    engine: Callable[[str], Engine]
    settings: CleanupSettings
    files: FileStore | None = None  # uploads (file#<id> items); None where a test has none
    usage: UsageStore | None = None  # a user's deletion takes their usage counters too


@cache
def default_context() -> CleanupContext:
    storage = storage_settings()
    threads_table = aws.table(storage.threads_table)
    blobs = BlobStore(aws.client("s3"), storage.bucket)
    return CleanupContext(
        threads=ThreadStore(threads_table),
        runs=RunStore(aws.table(storage.runs_table)),
        messages=MessageStore(
            aws.table(storage.messages_table), blobs, inline_bytes=storage.message_inline_bytes
        ),
        cleanups=CleanupLedger(threads_table),
        blobs=blobs,
        engine=lambda name: engine_for(name, upstream_settings()),
        settings=cleanup_settings(),
        files=FileStore(threads_table),
        usage=UsageStore(threads_table),
    )


def clean_up(pending: PendingCleanup, ctx: CleanupContext) -> None:
    """Remove the thread upstream and here; on failure the record says what is left, and the error is raised
    (the caller's retries, the dead-letter queue and the sweep take it from there)."""
    pending = ctx.cleanups.record(pending)
    try:
        _remove_everything(pending, ctx)
    except Exception as error:
        ctx.cleanups.failed(pending.user_id, pending.thread_id, f"{type(error).__name__}: {error}")
        raise
    ctx.cleanups.done(pending.user_id, pending.thread_id)
    logger.info("thread cleaned up", extra={"thread_id": pending.thread_id})


class CleanupFailed(Exception):
    """Some threads could not be cleaned; their records stay, and the invocation fails so it is retried."""


def delete_threads(request: DeleteThreadsRequest, ctx: CleanupContext) -> int:
    """Finish the deletions the API recorded (DELETE of a thread, or of all the user's data); returns how
    many threads were cleaned."""
    if request.file_ids:
        delete_files(request.user_id, request.file_ids, ctx)
    pending = ctx.cleanups.for_user(request.user_id)
    if request.thread_ids is not None:
        pending = [p for p in pending if p.thread_id in request.thread_ids]
    failed = []
    for cleanup in pending:
        try:
            clean_up(cleanup, ctx)
        except Exception:
            logger.exception("cleanup failed", extra={"thread_id": cleanup.thread_id})
            failed.append(cleanup.thread_id)
    if failed:
        raise CleanupFailed(f"threads not cleaned yet: {', '.join(failed)}")
    if request.thread_ids is None:
        ctx.threads.delete_slots(request.user_id)
        # Uploads through the Assistants-compatible API (their records went with the API's request).
        ctx.blobs.delete_prefix(f"{COMPAT_FILES_PREFIX}{request.user_id}/")
        if ctx.usage is not None:
            ctx.usage.delete_all(request.user_id)
    return len(pending)


def thread_expired_by_ttl(record: Mapping[str, Any]) -> ThreadRecord | None:
    """The thread a DynamoDB Streams record says TTL removed, or None for any other change. The event
    source filter lets only these through already; checking again keeps a misconfigured filter harmless."""
    identity = record.get("userIdentity") or {}
    if record.get("eventName") != "REMOVE" or identity.get("principalId") != TTL_PRINCIPAL:
        return None
    old_image = (record.get("dynamodb") or {}).get("OldImage") or {}
    from boto3.dynamodb.types import TypeDeserializer  # here: importing it imports all of boto3

    deserialize = TypeDeserializer().deserialize
    item = {name: deserialize(value) for name, value in old_image.items()}
    if item.get("kind") != "thread":
        return None
    return from_item(ThreadRecord, item)


def clean_up_expired(record: Mapping[str, Any], ctx: CleanupContext) -> bool:
    """Clean up after a TTL removal; False when the record is not one."""
    thread = thread_expired_by_ttl(record)
    if thread is None:
        return False
    clean_up(pending_for(thread), ctx)
    return True


class SweepReport(DeferredModel):
    expired: int = 0
    retried: int = 0
    cleaned: int = 0
    failed: int = 0
    given_up: int = 0  # cleanups past max attempts, left for a person (their records stay)
    orphaned_files: int = 0  # files deleted on their own, or whose thread is gone, removed now
    repaired: int = 0  # runs ended and locks put right (threadrunner.run_repair)
    repairs_failed: int = 0  # repairs that raised: the next sweep tries again


def sweep(ctx: CleanupContext, repairs: run_repair.RepairContext | None = None) -> SweepReport:
    """The backstop: with ``repairs``, runs whose execution died and the locks they left (the reconciler's
    code, for events that never came); threads past ``expires_at`` that TTL has not removed yet, and
    cleanups that failed."""
    report = SweepReport()
    if repairs is not None:
        repaired = run_repair.sweep(repairs)
        report.repaired, report.repairs_failed = repaired.repaired, repaired.failed
    todo: dict[str, PendingCleanup] = {}
    for waiting in ctx.cleanups.pending():
        if waiting.attempts >= ctx.settings.max_cleanup_attempts:
            report.given_up += 1
            logger.error(
                "cleanup given up", extra={"thread_id": waiting.thread_id, "error": waiting.last_error}
            )
            continue
        todo[waiting.thread_id] = waiting
        report.retried += 1
    for thread in ctx.threads.expired(clock.now()):
        if thread.id not in todo and thread.active_run_id is None:
            todo[thread.id] = pending_for(thread)
            report.expired += 1
    for pending in todo.values():
        try:
            clean_up(pending, ctx)
        except Exception:
            logger.exception("cleanup failed", extra={"thread_id": pending.thread_id})
            report.failed += 1
        else:
            report.cleaned += 1
    report.orphaned_files = _remove_orphaned_files(set(todo), ctx)
    return report


def _remove_orphaned_files(cleaned_threads: set[str], ctx: CleanupContext) -> int:
    """Files a DELETE hid but whose removal failed, and files whose thread is gone (created while it was
    being deleted): nothing else would ever remove them."""
    if ctx.files is None:
        return 0
    removed = 0
    for record in ctx.files.everyone():
        if record.thread_id in cleaned_threads:
            continue  # its thread's cleanup has it
        orphaned = (
            record.deleting_at is not None or ctx.threads.find(record.user_id, record.thread_id) is None
        )
        if not orphaned or ctx.cleanups.get(record.user_id, record.thread_id) is not None:
            continue
        try:
            delete_files(record.user_id, [record.id], ctx)
        except Exception:
            logger.exception("orphaned file not removed", extra={"file_id": record.id})
        else:
            removed += 1
    return removed


def _remove_everything(pending: PendingCleanup, ctx: CleanupContext) -> None:
    thread = ctx.threads.find(pending.user_id, pending.thread_id)
    upstream_thread_id = pending.upstream_thread_id or (thread.upstream_thread_id if thread else None)
    runs = ctx.runs.list_for_thread(pending.thread_id)
    unfinished = [run for run in runs if not run.status.is_terminal and run.response_ids]
    if upstream_thread_id or unfinished:
        engine = ctx.engine(pending.engine)
        for run in unfinished:
            engine.cancel(run)  # stop spending first; the conversation may be locked by a running response
        if upstream_thread_id:
            engine.delete_thread(upstream_thread_id)
    # The thread's documents' store (files of purpose file_search), before the files in it.
    vector_store_id = pending.vector_store_id or (thread.vector_store_id if thread else None)
    file_engine = _file_engine(pending.engine, ctx) if vector_store_id else None
    if vector_store_id and file_engine is not None:
        vector_stores(file_engine).delete_store(vector_store_id)
    delete_upstream_files(pending, runs, ctx)
    ctx.blobs.delete_prefix(outputs_prefix(pending.thread_id))
    for run in runs:
        ctx.runs.delete(run.id)
    ctx.messages.delete_thread(pending.thread_id)
    # Last: while it exists, the thread item still says what it was.
    ctx.threads.delete(
        pending.user_id, pending.thread_id, assistant=pending.assistant, purpose=pending.purpose
    )


def delete_upstream_files(pending: PendingCleanup, runs: list[RunRecord], ctx: CleanupContext) -> None:
    """The thread's uploads (upstream copy, S3 object, record) and the Files API copies of what its runs
    generated; before the runs that reference them are gone, so a failed attempt can start again."""
    uploads = ctx.files.for_thread(pending.user_id, pending.thread_id) if ctx.files else []
    generated = [o.upstream_file_id for run in runs for o in run.output_files if o.upstream_file_id]
    engine = (
        _file_engine(pending.engine, ctx) if generated or any(f.upstream_file_id for f in uploads) else None
    )
    for upstream_file_id in generated:
        if engine is not None:
            engine.delete_file(upstream_file_id)
    for record in uploads:
        _delete_file(record, engine, ctx)


def delete_files(user_id: str, file_ids: list[str], ctx: CleanupContext) -> None:
    """DELETE /v1/files/{id}: each file upstream, in S3 and its record; one already gone is fine."""
    if ctx.files is None:
        raise RuntimeError("this cleanup has no file store")
    for file_id in file_ids:
        record = ctx.files.find(user_id, file_id)
        if record is not None:
            engine = _file_engine(record.engine, ctx) if record.upstream_file_id else None
            if engine is not None and record.purpose is FilePurpose.file_search:
                remove_document(record, engine, ctx.threads)  # out of the thread's store, then deleted
            _delete_file(record, engine, ctx)


def _delete_file(record: FileRecord, engine: FileEngine | None, ctx: CleanupContext) -> None:
    if record.upstream_file_id and engine is not None:
        engine.delete_file(record.upstream_file_id)
    ctx.blobs.delete(record.key)
    ctx.blobs.delete(record.upload_key)  # an upload not staged yet, or one replayed after staging
    if ctx.files is not None:
        ctx.files.delete(record.user_id, record.id)  # last: until then it says what is left


def _file_engine(name: str, ctx: CleanupContext) -> FileEngine | None:
    return cast(FileEngine, ctx.engine(name)) if name in FILE_ENGINES else None
