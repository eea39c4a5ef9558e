"""One function per state of run.asl.json. Each reads the run from DynamoDB, talks upstream at most once
per create, writes what it learned, and returns the small RunProgress the next state needs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import cast

from threadrunner import accounting, clock, fallback, history, run_metrics, turns
from threadrunner.assistant_definitions import load_assistant
from threadrunner.engines.base import (
    AssistantDefinition,
    Engine,
    FileEngine,
    RunFile,
    RunRequest,
    ToolOutput,
    UpstreamRun,
)
from threadrunner.errors import (
    FileNotInlinable,
    UpstreamError,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamsFailed,
    UpstreamThreadGone,
)
from threadrunner.files.outputs import copy_outputs
from threadrunner.models.records import RunError, RunRecord, RunStatus, ToolCallRecord, ToolCallSummary
from threadrunner.models.workflow import (
    FinishRunInput,
    FinishRunOutput,
    PendingToolCall,
    RunProgress,
    RunToolInput,
    RunToolOutput,
    StepInput,
)
from threadrunner.tool_summaries import summarize_tool_calls
from threadrunner.tools.registry import ToolContext, ToolResult, call_tool, error_result, refusal, tool_specs
from threadrunner.workflow import lost_creates, tool_crashes
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.deleted_runs import (
    finish_of_deleted,
    progress_of_deleted,
    tool_output_of_deleted,
    unless_run_deleted,
)
from threadrunner.workflow.polling import next_wait_seconds

logger = logging.getLogger(__name__)

SUMMARY_CHARS = 500
# A tool Lambda that died (timeout, crash) is tried again once; then the model gets an error output.
MAX_TOOL_ATTEMPTS = 2
# A start stuck in the upstream's queue is cancelled and created again this many times, then the run fails.
MAX_QUEUED_RESTARTS = 1


class ToolOutputsMissing(Exception):
    """Submit tool outputs found no tool call in the run's current round: there is nothing to hand back."""


@unless_run_deleted(progress_of_deleted)
def start_run(step: StepInput, ctx: StepContext) -> RunProgress:
    run = _with_message(ctx.runs.get(step.run_id), ctx)
    if run.response_ids:  # a retried step whose create went out already: nothing to start again
        upstream_thread_id = run.upstream_thread_id or _upstream_thread(run, ctx.engine(run.engine), ctx)
    else:
        run, upstream_thread_id = _start_with_fallback(run, ctx)
    started_at = run.started_at or clock.now()  # a re-executed Start run keeps the first start
    ctx.runs.update(
        run.id,
        status=RunStatus.in_progress,
        started_at=started_at,
        upstream_thread_id=upstream_thread_id,
        model=_model(run, ctx),
    )
    if run.started_at is None:
        queue_wait = (started_at - run.created_at).total_seconds()
        run_metrics.run_started(run, environment=ctx.run_settings.environment, queue_wait_seconds=queue_wait)
    return RunProgress(status=RunStatus.in_progress, wait_seconds=step.settings.first_wait_seconds)


def _start_with_fallback(run: RunRecord, ctx: StepContext) -> tuple[RunRecord, str]:
    """Start on the run's engine or, when it has an outage (now, or its circuit is open), on the fallback
    engine (threadrunner/fallback.py). Returns the run as started and its upstream thread id."""
    if ctx.fallback is None:
        return run, _start_on(run, ctx)
    route = ctx.fallback.route(run.engine)
    if route.engine != run.engine:  # circuit open: straight to the fallback
        return _on_fallback(_switch(run, route, ctx), route, ctx)
    try:
        upstream_thread_id = _start_on(run, ctx)
    except Exception as error:
        if fallback.is_lost_create(error):
            # The primary may be running this turn: never a second create anywhere; the run fails.
            ctx.fallback.suspect(run.engine, error)
            raise
        if not fallback.is_outage(error) or ctx.runs.get(run.id).pending_round is not None:
            # Still claimed: an earlier attempt died after its create and the lookup failed; it may have run.
            raise
        switched = ctx.fallback.failed(run.engine, error)
        if switched is None:
            raise
        return _on_fallback(_switch(run, switched, ctx), switched, ctx)
    ctx.fallback.succeeded(route)
    return run, upstream_thread_id


def _on_fallback(run: RunRecord, route: fallback.Route, ctx: StepContext) -> tuple[RunRecord, str]:
    try:
        return run, _start_on(run, ctx)
    except (UpstreamError, FileNotInlinable) as error:
        # Both failed (or the fallback cannot inline the run's files): the run ends with both reasons (its
        # user message stays in the thread's log).
        raise UpstreamsFailed(
            f"{route.fallback_from}: {route.reason}; fallback {route.engine}: {type(error).__name__}: {error}"
        ) from error


def _switch(run: RunRecord, route: fallback.Route, ctx: StepContext) -> RunRecord:
    fields = {
        "engine": route.engine,
        "fallback_from": route.fallback_from,
        "fallback_reason": route.reason,
    }
    ctx.runs.update(run.id, **fields)
    logger.warning("run %s moves from %s to %s: %s", run.id, route.fallback_from, route.engine, route.reason)
    run_metrics.count(
        run_metrics.FALLBACKS, environment=ctx.run_settings.environment, assistant=run.assistant
    )
    return run.model_copy(update=fields)


def _start_on(run: RunRecord, ctx: StepContext) -> str:
    """Round 0 on the run's engine; returns the upstream thread id."""
    engine = ctx.engine(run.engine)
    upstream_thread_id = _upstream_thread(run, engine, ctx)
    request = _run_request(run, upstream_thread_id, ctx)
    # where a create whose answer was lost is looked for and cancelled
    run = run.model_copy(update={"upstream_thread_id": upstream_thread_id})
    try:
        _create_round(
            run,
            0,
            create=lambda: engine.start(request, run.message),
            find=lambda: engine.find_created(request, run, 0, []),
            ctx=ctx,
        )
    except UpstreamNotFound as error:
        if engine.thread_exists(upstream_thread_id):
            raise
        # Deleted upstream (by hand, or a new server): this run fails, the thread's next run starts afresh.
        thread = ctx.threads.get(run.user_id, run.thread_id)
        ctx.threads.forget_upstream_thread(thread, upstream_thread_id)
        raise UpstreamThreadGone(
            f"the upstream thread {upstream_thread_id} is gone; the thread's next run starts a new one"
        ) from error
    return upstream_thread_id


@unless_run_deleted(progress_of_deleted)
def check_run(step: StepInput, ctx: StepContext) -> RunProgress:
    run = ctx.runs.get(step.run_id)
    engine = ctx.engine(run.engine)
    if run.cancel_requested:  # POST /v1/runs/{id}/cancel: stop upstream, end the run cancelled
        engine.cancel(run)
        return RunProgress(status=RunStatus.cancelled, poll_count=step.run.poll_count)
    poll_count = step.run.poll_count + 1
    if run.restarting_round:
        restarted = _restart_round(run, step, ctx, poll_count)
        if restarted is not None:
            return restarted
        run = ctx.runs.get(run.id)
    upstream = engine.poll(run)
    response_id = run.current_response_id or ""
    if upstream.status not in ("queued", "in_progress"):
        ctx.runs.record_usage(run.id, response_id, upstream.usage)

    if upstream.tool_calls and upstream.status in ("completed", "requires_action", "incomplete"):
        if (limit_error := _tool_call_limit(run, upstream, ctx)) is not None:
            # Left waiting, the calls would hold the thread upstream (an Assistants run until it expires,
            # a conversation for good): cancel the run and answer them with an error.
            engine.cancel(run)
            engine.close_tool_calls(run, [call.call_id for call in upstream.tool_calls])
            ctx.runs.update(run.id, error=limit_error)
            return RunProgress(status=RunStatus.failed, poll_count=poll_count)
        pending = _record_tool_calls(run, upstream, ctx)
        ctx.runs.update(run.id, status=RunStatus.requires_action)
        return RunProgress(status=RunStatus.requires_action, poll_count=poll_count, tool_calls=pending)
    if upstream.status == "completed":
        return RunProgress(status="completed", poll_count=poll_count)
    if upstream.status in ("failed", "cancelled", "expired", "incomplete"):
        error = upstream.error or RunError(
            code=upstream.status, message=f"the upstream run ended {upstream.status}"
        )
        ctx.runs.update(run.id, error=error, answer=upstream.answer)
        return RunProgress(status=upstream.status, poll_count=poll_count)
    if upstream.status == "queued" and _stuck_in_queue(run, ctx):
        return _cancel_stuck_round(run, step, ctx, poll_count)
    return _wait_or_time_out(run, step, poll_count, upstream.poll_after_ms)


def _wait_or_time_out(
    run: RunRecord, step: StepInput, poll_count: int, poll_after_ms: int | None
) -> RunProgress:
    """The watchdog: past the run's deadline or the poll limit the run ends timed_out (Cancel run)."""
    if clock.now() >= run.deadline_at or poll_count >= step.settings.max_polls:
        return RunProgress(status=RunStatus.timed_out, poll_count=poll_count)
    wait = next_wait_seconds(step.settings, poll_count, poll_after_ms)
    return RunProgress(status=RunStatus.in_progress, wait_seconds=wait, poll_count=poll_count)


def _stuck_in_queue(run: RunRecord, ctx: StepContext) -> bool:
    started = run.round_started_at or run.started_at
    if started is None:
        return False
    return (clock.now() - started).total_seconds() > ctx.run_settings.max_queued_seconds


def _cancel_stuck_round(run: RunRecord, step: StepInput, ctx: StepContext, poll_count: int) -> RunProgress:
    """A response the upstream never picked up: cancel it, and start the run again once (only the start:
    tool outputs cannot be handed to a cancelled Assistants run). Next time, the run fails."""
    ctx.engine(run.engine).cancel(run)
    seconds = ctx.run_settings.max_queued_seconds
    if run.round > 0 or run.queued_restarts >= MAX_QUEUED_RESTARTS:
        again = " again, after a restart" if run.queued_restarts else ""
        error = RunError(
            code="UpstreamStuckQueued",
            message=f"the upstream kept the run queued for more than {seconds:g} s{again}; it was cancelled",
        )
        ctx.runs.update(run.id, error=error)
        return RunProgress(status=RunStatus.failed, poll_count=poll_count)
    logger.warning("run %s: queued upstream for more than %g s, cancelled to start again", run.id, seconds)
    ctx.runs.update(run.id, restarting_round=True, queued_restarts=run.queued_restarts + 1)
    return RunProgress(
        status=RunStatus.in_progress, wait_seconds=step.settings.first_wait_seconds, poll_count=poll_count
    )


def _restart_round(run: RunRecord, step: StepInput, ctx: StepContext, poll_count: int) -> RunProgress | None:
    """Start the stuck start again once its cancel has landed. None: it got going before the cancel
    landed and goes on as usual."""
    engine = ctx.engine(run.engine)
    if run.response_ids:
        upstream = engine.poll(run)
        if upstream.status in ("queued", "in_progress"):  # still cancelling
            return _wait_or_time_out(run, step, poll_count, upstream.poll_after_ms)
        if upstream.status != "cancelled":
            ctx.runs.update(run.id, restarting_round=False)
            return None
        ctx.runs.reopen_round(run.id, run.round, run.current_response_id or "")
    fresh = _with_message(run, ctx).model_copy(update={"response_ids": []})
    request = _run_request(fresh, fresh.upstream_thread_id or "", ctx)
    _create_round(
        fresh,
        0,
        create=lambda: engine.start(request, fresh.message),
        find=lambda: engine.find_created(request, fresh, 0, []),
        ctx=ctx,
    )
    ctx.runs.update(run.id, restarting_round=False)
    return RunProgress(
        status=RunStatus.in_progress, wait_seconds=step.settings.first_wait_seconds, poll_count=poll_count
    )


def _tool_call_limit(run: RunRecord, upstream: UpstreamRun, ctx: StepContext) -> RunError | None:
    limit = ctx.run_settings.max_tool_calls_per_run
    asked = len({summary.call_id for summary in run.tool_calls} | {c.call_id for c in upstream.tool_calls})
    if asked <= limit:
        return None
    return RunError(
        code="ToolCallLimitExceeded",
        message=f"the model asked for {asked} tool calls in this run; this environment allows {limit}",
    )


def tool_runner(tool_name: str) -> Callable[[RunToolInput, StepContext], RunToolOutput]:
    """The step behind one tool's own Lambda (functions/run_tool, one per tool): it runs that tool and no other."""

    @unless_run_deleted(tool_output_of_deleted)
    def run_tool(call_input: RunToolInput, ctx: StepContext) -> RunToolOutput:
        call = ctx.ledger.get(call_input.run_id, call_input.call_id)
        if call.output is not None:  # a retried step: the tool already ran, reuse its output
            return RunToolOutput(call_id=call.call_id, is_error=call.is_error)
        started = clock.now()
        attempt = ctx.ledger.start_attempt(call.run_id, call.call_id, started.isoformat())
        if call.name != tool_name:
            result = error_result(f"the call for {call.name} reached the {tool_name} tool")
        elif attempt > MAX_TOOL_ATTEMPTS:  # earlier attempts died (Lambda timeout, crash): stop trying
            result = error_result(f"the tool {tool_name} did not finish after {MAX_TOOL_ATTEMPTS} attempts")
        else:
            run = ctx.runs.get(call_input.run_id)
            assistant = load_assistant(ctx.tool_settings.assistants_dir, run.assistant)
            result = call_tool(
                call.name, call.arguments, ToolContext(assistant=assistant, settings=ctx.tool_settings)
            )
            if result.full_output is not None:
                key = ctx.messages.keep_tool_output(
                    run.thread_id, call.run_id, call.call_id, result.full_output
                )
                call = call.model_copy(update={"full_output_key": key})
        stored = _store_output(call, result, started, ctx)
        return RunToolOutput(call_id=stored.call_id, is_error=stored.is_error)

    run_tool.__name__ = f"run_{tool_name}"
    return run_tool


@unless_run_deleted(progress_of_deleted)
def submit_tool_outputs(step: StepInput, ctx: StepContext) -> RunProgress:
    run = _with_message(ctx.runs.get(step.run_id), ctx)
    calls = ctx.ledger.list(run.id)
    # Every call the current response asked for (the ledger has them all, including refused ones).
    requested = [call for call in calls if call.round == run.round]
    if not requested and any(call.round == run.round - 1 for call in calls):
        # A re-executed step: the outputs went out and their round is recorded; nothing to submit again.
        ctx.runs.update(run.id, status=RunStatus.in_progress)
        return RunProgress(
            status=RunStatus.in_progress,
            wait_seconds=step.settings.first_wait_seconds,
            poll_count=step.run.poll_count,
        )
    if not requested:
        raise ToolOutputsMissing(f"run {run.id} asked for no tool calls in round {run.round}")
    # A call still without output here had its tool's Lambda die: the model gets an error output for it.
    calls = tool_crashes.answer_dead_calls(calls, run.round, ctx)
    requested = [call for call in calls if call.round == run.round]
    outputs = [ToolOutput(call_id=call.call_id, output=call.output or "") for call in requested]
    _summarize_tool_outputs(run, calls, ctx)
    engine = ctx.engine(run.engine)
    request = _run_request(run, run.upstream_thread_id or "", ctx)
    call_ids = [output.call_id for output in outputs]
    _create_round(
        run,
        run.round + 1,
        create=lambda: engine.submit_tool_outputs(request, run, outputs),
        find=lambda: engine.find_created(request, run, run.round + 1, call_ids),
        ctx=ctx,
    )
    ctx.runs.update(run.id, status=RunStatus.in_progress)
    return RunProgress(
        status=RunStatus.in_progress,
        wait_seconds=step.settings.first_wait_seconds,
        poll_count=step.run.poll_count,
    )


@unless_run_deleted(progress_of_deleted)
def collect_outputs(step: StepInput, ctx: StepContext) -> RunProgress:
    """Persist the answer and copy the generated files to S3 now: background responses are only kept
    upstream for a short while, and code interpreter containers expire when idle."""
    run = ctx.runs.get(step.run_id)
    engine = ctx.engine(run.engine)
    upstream = engine.poll(run)
    outputs = []
    if upstream.files:
        if ctx.blobs is None:
            raise RuntimeError("Collect outputs has no bucket to copy generated files to")
        outputs = copy_outputs(run, upstream.files, cast(FileEngine, engine), ctx.blobs)
    ctx.runs.update(run.id, answer=upstream.answer or "", output_files=outputs)
    return RunProgress(status=RunStatus.completed, poll_count=step.run.poll_count)


@unless_run_deleted(progress_of_deleted)
def cancel_run(step: StepInput, ctx: StepContext) -> RunProgress:
    run = ctx.runs.get(step.run_id)
    ctx.engine(run.engine).cancel(run)
    ctx.runs.update(
        run.id,
        error=RunError(
            code="timed_out", message="the run did not finish before its deadline and was cancelled"
        ),
    )
    return RunProgress(status=RunStatus.timed_out, poll_count=step.run.poll_count)


@unless_run_deleted(finish_of_deleted)
def finish_run(finish: FinishRunInput, ctx: StepContext) -> FinishRunOutput:
    """End the run. The terminal status comes last: a client that sees it finds the answer in the thread's
    log and the thread free for its next run (or already passed to the queued one). Every part is safe to
    repeat, so a retried Finish run completes what a crashed one began."""
    run = ctx.runs.get(finish.run_id)
    status, error = _final_status(finish, run)
    if not run.status.is_terminal:
        calls = ctx.ledger.list(run.id)
        if status is not RunStatus.completed:
            _close_open_tool_calls(run, calls, ctx)  # before the thread's next run can start
        run = _summarize_tool_outputs(run, calls, ctx)  # before it ends: the metrics count the tool errors
    # Every ending logs its tool calls (and answer, if any), before the lock goes: a queued successor on
    # the chat engine replays them.
    logged = run if run.completed_at else run.model_copy(update={"completed_at": clock.now()})
    for message in history.run_outputs(logged):
        ctx.messages.add(message)
    if finish.error is not None:
        _stop_upstream(run, ctx)
    # The lock before the status, whatever else fails: the thread's next queued run gets it and is started.
    turns.end_turn(
        run,
        ctx.threads,
        ctx.runs,
        ctx.start_execution,
        ctx.run_settings.thread_ttl_days,
        end_cancelled=lambda successor: _end(successor, RunStatus.cancelled, None, ctx),
    )
    if not run.status.is_terminal:
        _end(ctx.runs.get(run.id), status, error, ctx)
    return FinishRunOutput(status=ctx.runs.get(run.id).status)


def _end(run: RunRecord, status: RunStatus, error: RunError | None, ctx: StepContext) -> None:
    """Status, metrics and usage at once (threadrunner.accounting)."""
    accounting.end_run(
        run,
        ctx.runs,
        ctx.usage,
        ctx.cost_settings.price_table,
        environment=ctx.run_settings.environment,
        status=status,
        completed_at=clock.now(),
        error=error,
    )


def _stop_upstream(run: RunRecord, ctx: StepContext) -> None:
    """A step crashed, so the upstream response may still be running, and the upstream keeps the
    conversation locked until it ends: cancel it, or the next run would meet ``conversation_locked``.
    Best effort: the thread's lock is released whatever happens here."""
    if not run.response_ids:
        return
    try:
        ctx.engine(run.engine).cancel(run)
    except Exception:
        logger.warning("could not cancel the upstream run after a failed step", exc_info=True)


def _close_open_tool_calls(run: RunRecord, calls: list[ToolCallRecord], ctx: StepContext) -> None:
    """Calls the current response asked for and the run never answered upstream (it ended before Submit
    tool outputs): left open, they would make the upstream refuse the thread's next run. Best effort."""
    if not run.response_ids or run.pending_round is not None:
        return
    open_calls = [call.call_id for call in calls if call.round == run.round]
    if not open_calls:
        return
    try:
        ctx.engine(run.engine).close_tool_calls(run, open_calls)
    except Exception:
        logger.warning("could not close the tool calls of run %s upstream", run.id, exc_info=True)


def _final_status(finish: FinishRunInput, run: RunRecord) -> tuple[RunStatus, RunError | None]:
    if finish.error is not None:
        return RunStatus.failed, RunError(code=finish.error.error, message=_cause_message(finish.error.cause))
    status = finish.run.status
    if status in (RunStatus.completed, RunStatus.cancelled, RunStatus.timed_out):
        return RunStatus(status), None
    # failed, expired, incomplete: Check run stored the upstream's reason on the run already
    return RunStatus.failed, run.error or RunError(code=status, message=f"the upstream run ended {status}")


def _cause_message(cause: str | None) -> str:
    """A Lambda failure's cause is its error payload: keep the message, never a stack trace."""
    if not cause:
        return "a workflow step failed"
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause[:SUMMARY_CHARS]
    if isinstance(payload, dict):
        return str(payload.get("errorMessage") or payload.get("errorType") or "a workflow step failed")[
            :SUMMARY_CHARS
        ]
    return str(payload)[:SUMMARY_CHARS]


def _with_message(run: RunRecord, ctx: StepContext) -> RunRecord:
    """The run with its whole message: a long one is kept in S3, not in the run item."""
    if run.message_key is None:
        return run
    return run.model_copy(update={"message": ctx.messages.run_message(run.message_key)})


def _upstream_thread(run: RunRecord, engine: Engine, ctx: StepContext) -> str:
    thread = ctx.threads.get(run.user_id, run.thread_id)
    if thread.engine != engine.name:  # a fallback engine: the thread keeps its own engine's upstream thread
        return engine.create_thread({"threadrunner_thread_id": thread.id})
    if thread.upstream_thread_id:
        return thread.upstream_thread_id
    created = engine.create_thread({"threadrunner_thread_id": thread.id})
    if ctx.threads.set_upstream_thread(thread, created):
        return created
    engine.delete_thread(created)  # another attempt recorded its own first: don't leave ours behind
    winner = ctx.threads.get(run.user_id, run.thread_id).upstream_thread_id
    if winner is None:
        raise UpstreamError(f"thread {thread.id} has no upstream thread")
    return winner


def _model(run: RunRecord, ctx: StepContext) -> str:
    """An engine with its own upstream may name the model that server runs; else the run's."""
    return ctx.upstream_settings.model_for(run.engine) or run.model


def _run_request(run: RunRecord, upstream_thread_id: str, ctx: StepContext) -> RunRequest:
    assistant = load_assistant(ctx.tool_settings.assistants_dir, run.assistant)
    # Models do not know today's date, and "last quarter" depends on it.
    instructions = f"{assistant.instructions.rstrip()}\n\nCurrent date: {clock.now().date().isoformat()}"
    tools = tool_specs(assistant)
    return RunRequest(
        upstream_thread_id=upstream_thread_id,
        model=_model(run, ctx),
        instructions=instructions,
        tools=tools,
        metadata={"threadrunner_run_id": run.id, "threadrunner_thread_id": run.thread_id},
        run_id=run.id,
        thread_id=run.thread_id,
        deadline_at=run.deadline_at,
        assistant=AssistantDefinition(
            name=assistant.name,
            description=assistant.description,
            instructions=assistant.instructions,
            model=_model(run, ctx),
            tools=tools,
        ),
        files=_run_files(run, ctx),
    )


def _run_files(run: RunRecord, ctx: StepContext) -> list[RunFile]:
    """The run's uploads as the engine attaches them (the API let only ready files of the thread in)."""
    if not run.file_ids:
        return []
    if ctx.files is None:
        raise RuntimeError("this step has no file store, and the run has files")
    files = []
    for file_id in run.file_ids:
        record = ctx.files.get(run.user_id, file_id)  # deleted since: the run fails, it cannot use it
        files.append(
            RunFile(
                file_id=record.id,
                upstream_file_id=record.upstream_file_id,
                filename=record.filename,
                content_type=record.content_type,
                purpose=record.purpose.value,
                key=record.key,
            )
        )
    return files


def _create_round(
    run: RunRecord,
    round_number: int,
    *,
    create: Callable[[], str],
    find: Callable[[], str | None],
    ctx: StepContext,
) -> None:
    """Exactly once: claim, create, record. A re-executed step whose earlier attempt died after its create
    call returned looks upstream first (``find``) and records what it finds instead of creating again; a
    create whose call got no answer may still land upstream and is never reissued."""
    if not ctx.runs.claim_round(run.id, round_number):
        found = find()
        if found is not None:
            logger.info("run %s: round %s was created by an interrupted attempt", run.id, round_number)
            ctx.runs.record_round(run.id, round_number, found, clock.now())
            return
        # The earlier attempt created nothing: its claim is ours now.
    try:
        response_id = create()
    except UpstreamOutcomeUnknown:
        ctx.runs.mark_round_unknown(run.id, round_number)
        lost_creates.cancel_lost_create(run, round_number, find, ctx)
        raise
    except Exception:
        # the upstream answered with an error: nothing was created
        ctx.runs.release_round(run.id, round_number)
        raise
    ctx.runs.record_round(run.id, round_number, response_id, clock.now())


def _record_tool_calls(run: RunRecord, upstream: UpstreamRun, ctx: StepContext) -> list[PendingToolCall]:
    """Put every requested call in the ledger and route it: to its tool's Lambda, or, when it must not run
    (unknown tool, not this assistant's, no Lambda deployed), straight to an error output for the model."""
    assistant = load_assistant(ctx.tool_settings.assistants_dir, run.assistant)
    known = {summary.call_id for summary in run.tool_calls}
    pending = []
    for call in upstream.tool_calls:
        record = ToolCallRecord(
            run_id=run.id, call_id=call.call_id, round=run.round, name=call.name, arguments=call.arguments
        )
        ctx.ledger.add(record)
        function = ctx.tool_functions.get(call.name)
        refused = refusal(call.name, assistant)
        if refused is None and function is None:
            refused = error_result(f"the tool {call.name} is not deployed")
        if refused is not None:
            _store_output(record, refused, clock.now(), ctx)
        else:
            pending.append(PendingToolCall(call_id=call.call_id, name=call.name, function=function or ""))
    new = [
        ToolCallSummary(call_id=c.call_id, name=c.name, arguments=c.arguments)
        for c in upstream.tool_calls
        if c.call_id not in known
    ]
    if new:
        ctx.runs.update(run.id, tool_calls=[*run.tool_calls, *new])
    return pending


def _store_output(
    call: ToolCallRecord, result: ToolResult, started: datetime, ctx: StepContext
) -> ToolCallRecord:
    finished = clock.now()
    return ctx.ledger.save_output(
        call.model_copy(
            update={
                "output": result.output,
                "is_error": result.is_error,
                "truncated": result.truncated,
                "finished_at": finished,
                "duration_ms": int((finished - started).total_seconds() * 1000),
            }
        )
    )


def _summarize_tool_outputs(run: RunRecord, calls: list[ToolCallRecord], ctx: StepContext) -> RunRecord:
    """Copy a short form of each output (``calls``: the run's ledger) onto the run, for GET /v1/runs/{id};
    returns the run with them. The step's own reads suffice: nothing else writes the run's tool calls
    while Submit tool outputs or Finish run holds it."""
    summaries = summarize_tool_calls(run.tool_calls, calls)  # still valid JSON, and says when it was cut
    ctx.runs.update(run.id, tool_calls=summaries)
    return run.model_copy(update={"tool_calls": summaries})
