"""Runs: stored with the user's message, then handed to the workflow as an execution named after the run,
at once or, behind a busy thread, when their turn comes (threadrunner.turns)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from threadrunner import aws, clock, history, turns
from threadrunner.assistant_definitions import check_hosted_tools, load_assistant
from threadrunner.budgets import check_budgets
from threadrunner.errors import InvalidRequestError, ServiceUnavailableError
from threadrunner.models.api import OutputFileOut
from threadrunner.models.api_runs import CreateRunRequest, RunOut
from threadrunner.models.records import RunError, RunRecord, RunStatus, ThreadRecord
from threadrunner.models.run_events import RunEventType
from threadrunner.services.context import ApiContext
from threadrunner.services.endings import end_before_start
from threadrunner.services.files import files_for_run
from threadrunner.settings import storage_settings
from threadrunner.stores._dynamo import TransactItem
from threadrunner.stores.response_waits import ResponseWaitStore
from threadrunner.workflow import application_steps, completion

logger = logging.getLogger(__name__)

# Messages longer than this (UTF-8 bytes) are kept in S3, not in the run item.
RUN_MESSAGE_INLINE_BYTES = 16 * 1024


def create_run(ctx: ApiContext, user_id: str, thread_id: str, request: CreateRunRequest) -> RunOut:
    check_message_length(ctx, request.message, "message")
    thread = ctx.threads.get(user_id, thread_id)
    assistant = load_assistant(ctx.tool_settings.assistants_dir, thread.assistant)
    check_hosted_tools(assistant, engine=thread.engine, allowed=ctx.tool_settings.mcp_servers)  # 422
    file_ids = files_for_run(ctx, user_id, thread, request.file_ids)
    run = new_run(ctx, thread, assistant=thread.assistant, model=assistant.model, message=request.message)
    run = run.model_copy(update={"file_ids": file_ids, "stream": request.stream})
    run, position = start_run(ctx, thread, run, enqueue=request.if_busy == "enqueue")
    return RunOut.of(run, _region(ctx), queue_position=position)


def check_message_length(ctx: ApiContext, message: str, field: str) -> None:
    limit = ctx.run_settings.max_message_chars
    if len(message) > limit:
        raise InvalidRequestError(
            f"{field} is longer than this environment's limit of {limit} characters", field=field
        )


def new_run(
    ctx: ApiContext, thread: ThreadRecord, *, assistant: str, model: str | None, message: str
) -> RunRecord:
    """A run of ``assistant`` on the thread, not stored yet."""
    now = clock.now()
    return RunRecord(
        id=clock.new_id("run"),
        thread_id=thread.id,
        user_id=thread.user_id,
        assistant=assistant,
        engine=thread.engine,
        model=model or ctx.run_settings.model,
        message=message,
        created_at=now,
        deadline_at=now + timedelta(seconds=ctx.run_settings.run_deadline_seconds),
    )


def start_run(
    ctx: ApiContext,
    thread: ThreadRecord,
    run: RunRecord,
    *,
    enqueue: bool,
    also: Sequence[TransactItem] = (),
) -> tuple[RunRecord, int | None]:
    """Store the run with its user message and its turn, and start its execution (or queue it). Returns the
    run and its place in the queue (None: started). ``also``: writes of the same transaction (a caller's own
    bookkeeping, done exactly when the run is created)."""
    # Queued runs too: a run enqueued within budget starts later even if the day's budget is used by then.
    check_budgets(
        ctx.usage.day(run.user_id, run.created_at.date()), ctx.cost_settings, run.created_at, model=run.model
    )
    per_minute = ctx.api_settings.runs_per_minute
    if per_minute is not None:
        # Last of the checks: a refused request (404, 422, 409 on a file) takes nothing from the limit.
        ctx.rate_limits.take(run.user_id, "runs", per_minute)
    # The run, its user message and its turn (the lock, or a place in the queue, with the thread's TTL pushed
    # forward) in one transaction: nothing is half-done when a write fails. 409 while another run is active
    # (unless it may wait), 404 once the thread is being deleted.
    new_items = [*_new_run_items(ctx, run), *also]
    ttl_days = ctx.run_settings.thread_ttl_days
    if enqueue:
        position = turns.take_turn(ctx.threads, thread, run.id, ttl_days=ttl_days, also=new_items)
    else:
        ctx.threads.acquire(thread, run.id, ttl_days=ttl_days, also=new_items)
        position = None
    # Before its execution starts: run.queued is always a run's first event.
    ctx.runs.events.log(run, RunEventType.run_queued, {"queue_position": position}, key="run.queued")
    if position is not None:
        return run, position
    try:
        execution_arn = ctx.start_execution(run.id)
    except (ClientError, BotoCoreError) as error:
        _give_up_before_start(ctx, run)
        raise ServiceUnavailableError("the run could not be started; try again") from error
    ctx.runs.update(run.id, execution_arn=execution_arn)
    return run.model_copy(update={"execution_arn": execution_arn}), None


def get_run(ctx: ApiContext, user_id: str, run_id: str) -> RunOut:
    run = ctx.runs.get_for_user(run_id, user_id)
    thread = ctx.threads.find(user_id, run.thread_id) if run.status is RunStatus.queued else None
    return run_out(ctx, run, thread)


def run_out(ctx: ApiContext, run: RunRecord, thread: ThreadRecord | None) -> RunOut:
    """The run as GET /v1/runs/{run_id} answers it; ``thread``, the run's, tells a queued run's place."""
    position = None
    if run.status is RunStatus.queued and thread is not None:
        position = turns.queue_position(thread, run.id)
    return RunOut.of(run, _region(ctx), queue_position=position, files=_output_files(ctx, run))


def _output_files(ctx: ApiContext, run: RunRecord) -> list[OutputFileOut]:
    """Presigned GETs for what the run generated, fresh on every read."""
    seconds = ctx.file_settings.download_url_seconds
    expires_at = clock.now() + timedelta(seconds=seconds)
    return [
        OutputFileOut(
            name=output.name,
            size_bytes=output.size_bytes,
            content_type=output.content_type,
            url=ctx.file_urls.download(output.key, seconds=seconds),
            expires_at=expires_at,
        )
        for output in run.output_files
    ]


def cancel_run(ctx: ApiContext, user_id: str, run_id: str) -> tuple[RunOut, bool]:
    """A queued run ends cancelled at once; a started one is flagged and Check run cancels it upstream.
    Returns the run and whether it has ended (False: the cancel is under way)."""
    return cancel(ctx, ctx.runs.get_for_user(run_id, user_id))


def cancel(ctx: ApiContext, run: RunRecord) -> tuple[RunOut, bool]:
    """The one cancel path, for the run's user and for operators (services.admin)."""
    if run.status.is_terminal:
        return RunOut.of(run, _region(ctx)), True
    if ctx.threads.dequeue(run.user_id, run.thread_id, run.id):
        end_before_start(ctx, run, RunStatus.cancelled)
        return RunOut.of(ctx.runs.get(run.id), _region(ctx)), True
    ctx.runs.request_cancel(run.id)
    current = ctx.runs.get(run.id)
    action = current.required_action
    if action is not None and action.answered_at is None and action.task_token:
        # Waiting for the application, no Check run comes: end the wait (without a token yet, Wait for the
        # application ends it as soon as it stores one).
        application_steps.abandon(action.task_token, run.id)
    elif current.response_ids:
        # Asleep until the upstream's webhook (completion "webhook"): wake it, for Check run to cancel now.
        completion.wake(
            current.response_ids[-1],
            waits=ResponseWaitStore(aws.table(storage_settings().runs_table)),
            stepfunctions=aws.client("stepfunctions"),
        )
    return RunOut.of(current, _region(ctx)), current.status.is_terminal


def _new_run_items(ctx: ApiContext, run: RunRecord) -> list[TransactItem]:
    """The run item and its user message in the thread's log (logged now, so it is never lost), as writes
    for the transaction that gives the run its turn. Long texts go to S3 first: should the transaction fail,
    they are left under the thread's log prefix, which its cleanup removes."""
    stored = run
    if len(run.message.encode()) > RUN_MESSAGE_INLINE_BYTES:
        # The run item stays small (a DynamoDB item stops at 400 KB, and the run also keeps its tool-call
        # summaries): the steps read a long message from S3, where the thread's log keeps it.
        key = ctx.messages.keep_run_message(run.thread_id, run.id, run.message)
        stored = run.model_copy(update={"message": "", "message_key": key})
    return [{"Put": ctx.runs.new_run(stored)}, {"Put": ctx.messages.new_entry(history.user_message(run))}]


def _give_up_before_start(ctx: ApiContext, run: RunRecord) -> None:
    """A run holding its thread whose execution could not start: the thread goes to the next in line first
    (a thread held by a run that never starts would refuse every run after it), then the run ends failed.
    Each is tried whatever becomes of the other; the caller is told to try again either way."""
    try:
        turns.end_turn(
            run,
            ctx.threads,
            ctx.runs,
            ctx.start_execution,
            ctx.run_settings.thread_ttl_days,
            end_cancelled=lambda successor: end_before_start(ctx, successor, RunStatus.cancelled),
        )
    except Exception:
        logger.exception("the thread could not be handed on", extra={"thread_id": run.thread_id})
    try:
        end_before_start(
            ctx,
            run,
            RunStatus.failed,
            RunError(code="workflow_unavailable", message="the run could not be started"),
        )
    except Exception:
        logger.exception("the run could not be ended", extra={"run_id": run.id})


def _region(ctx: ApiContext) -> str:
    return ctx.workflow_settings.region
