"""Threads: one per (user, assistant, purpose) while it is fresh; listed, read and deleted by their owner."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from threadrunner.assistant_definitions import check_hosted_tools, load_assistant
from threadrunner.errors import ConflictError
from threadrunner.models.api import CreateThreadRequest, MessageOut, MessagePage, ThreadOut, ThreadPage
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.models.records import RunStatus, ThreadRecord
from threadrunner.services.context import ApiContext
from threadrunner.services.endings import end_before_start
from threadrunner.stores.cleanups import pending_for

logger = logging.getLogger(__name__)


def get_or_create_thread(
    ctx: ApiContext, user_id: str, request: CreateThreadRequest
) -> tuple[ThreadOut, bool]:
    assistant = load_assistant(ctx.tool_settings.assistants_dir, request.assistant)  # unknown: 422
    engine = assistant.engine or ctx.run_settings.engine  # the thread keeps it for life
    # A hosted tool the engine lacks, an MCP server off the allow-list: 422 naming the key.
    check_hosted_tools(assistant, engine=engine, allowed=ctx.tool_settings.mcp_servers)
    thread, created = ctx.threads.get_or_create(
        user_id=user_id,
        assistant=request.assistant,
        purpose=request.purpose,
        engine=engine,
        max_age_hours=request.max_age_hours or ctx.run_settings.thread_max_age_hours,
        ttl_days=ctx.run_settings.thread_ttl_days,
    )
    return ThreadOut.of(thread), created


def get_thread(ctx: ApiContext, user_id: str, thread_id: str) -> ThreadOut:
    return ThreadOut.of(ctx.threads.get(user_id, thread_id))


def list_threads(ctx: ApiContext, user_id: str, *, limit: int, after: str | None) -> ThreadPage:
    threads, last = ctx.threads.list_live(user_id, limit=limit, after=after)
    # A page goes on after a thread id (the route checks its pattern): any such id is a position to go on from.
    return ThreadPage(threads=[ThreadOut.of(t) for t in threads], next=last)


def list_messages(
    ctx: ApiContext, user_id: str, thread_id: str, *, limit: int, after: str | None
) -> MessagePage:
    ctx.threads.get(user_id, thread_id)  # the caller's, and live
    messages, more = ctx.messages.page(thread_id, limit=limit, after=after)
    return MessagePage(
        messages=[MessageOut.of(m) for m in messages],
        next=messages[-1].message_id if more and messages else None,
    )


def delete_thread(ctx: ApiContext, user_id: str, thread_id: str, *, force: bool) -> bool:
    """Hide the thread and hand its removal to the cleanup Lambda. False when there is nothing (left) to
    delete, so a repeated DELETE is answered, never an error."""
    thread = ctx.threads.find(user_id, thread_id)
    if thread is None:
        return ctx.cleanups.get(user_id, thread_id) is not None  # removal still under way
    if thread.deleting_at is None and thread.active_run_id and not force:
        raise ConflictError(
            f"thread {thread_id} has an active run; cancel it or delete with ?force=true",
            active_run_id=thread.active_run_id,
        )
    _prepare_deletion(ctx, thread)
    hand_over_deletion(ctx, DeleteThreadsRequest(user_id=user_id, thread_ids=[thread.id]))
    return True


def delete_user_data(ctx: ApiContext, user_id: str) -> None:
    """Everything of the caller: every thread (expired ones too), its runs, messages, files, upstream data."""
    for thread in ctx.threads.all_for_user(user_id):
        _prepare_deletion(ctx, thread)
    # Stored Idempotency-Key answers hold copies of what was created (thread and file details).
    ctx.idempotency.delete_all(user_id)
    # The user's own assistants and their threads' extras (the Assistants-compatible API).
    ctx.compat_threads.delete_all(user_id)
    hand_over_deletion(ctx, DeleteThreadsRequest(user_id=user_id))


def _prepare_deletion(ctx: ApiContext, thread: ThreadRecord) -> None:
    """The cleanup is recorded before the thread is hidden: from here on it will be finished, by the cleanup
    Lambda or by the sweep. Hidden, the thread takes no new run (stores/run_lock.py), so the runs it has
    then are all there is: queued ones end cancelled, the active one is asked to stop."""
    ctx.cleanups.record(pending_for(thread))
    ctx.threads.mark_deleting(thread)
    hidden = ctx.threads.find(thread.user_id, thread.id) or thread
    for run_id in list(hidden.queue):
        if ctx.threads.dequeue(hidden.user_id, hidden.id, run_id):
            end_before_start(ctx, ctx.runs.get(run_id), RunStatus.cancelled)
    if hidden.active_run_id:
        ctx.runs.request_cancel(hidden.active_run_id)


def hand_over_deletion(ctx: ApiContext, request: DeleteThreadsRequest) -> None:
    function = ctx.cleanup_settings.delete_threads_function
    if not function:
        logger.warning("no delete_threads function configured: the sweep will clean up")
        return
    try:
        ctx.lambda_client.invoke(
            FunctionName=function, InvocationType="Event", Payload=request.model_dump_json().encode()
        )
    except (ClientError, BotoCoreError):
        # The cleanup is recorded: the daily sweep finishes it. The caller's request did succeed.
        logger.exception("could not hand the deletion over; the sweep will clean up")
