"""Check run and Cancel run: what the run needs next (wait, tool calls, its outputs, its end), the watchdog
(deadline and poll limit), and a start stuck in the upstream's queue."""

from __future__ import annotations

import logging
import time

from threadrunner import clock
from threadrunner.engines.base import UpstreamRun
from threadrunner.knowledge_lookup import degraded_features
from threadrunner.models.records import RunError, RunRecord, RunStatus
from threadrunner.models.run_events import RunEventType
from threadrunner.models.workflow import RunProgress, StepInput
from threadrunner.settings import UpstreamSettings
from threadrunner.workflow import application_steps, stream_relay
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.deleted_runs import progress_of_deleted, unless_run_deleted
from threadrunner.workflow.invocation import remaining_seconds
from threadrunner.workflow.polling import next_wait_seconds, short_poll_pause
from threadrunner.workflow.rounds import create_round, run_request, with_message
from threadrunner.workflow.tool_steps import record_hosted_calls, record_tool_calls

logger = logging.getLogger(__name__)

# A start stuck in the upstream's queue is cancelled and created again this many times, then the run fails.
MAX_QUEUED_RESTARTS = 1


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
    if run.stream:
        run, upstream = _relay_stream(run, upstream, step, ctx)
    run, upstream = _short_polls(run, upstream, step, ctx)
    if run.cancel_requested:  # asked while this invocation polled
        engine.cancel(run)
        return RunProgress(status=RunStatus.cancelled, poll_count=poll_count)
    response_id = run.current_response_id or ""
    if upstream.status not in ("queued", "in_progress"):
        ctx.runs.record_usage(run.id, response_id, upstream.usage)
        ctx.runs.events.log(
            run,
            RunEventType.model_completed,
            {"round": run.round, "status": upstream.status, "usage": upstream.usage.model_dump(mode="json")},
            key=f"model.completed#{response_id}",
        )
        run = record_hosted_calls(run, upstream, ctx)  # MCP calls the upstream made (hosted_tools)

    if upstream.tool_calls and upstream.status in ("completed", "requires_action", "incomplete"):
        if (limit_error := _tool_call_limit(run, upstream, ctx)) is not None:
            # Left waiting, the calls would hold the thread upstream (an Assistants run until it expires,
            # a conversation for good): cancel the run and answer them with an error.
            engine.cancel(run)
            engine.close_tool_calls(
                run, [call.call_id for call in upstream.tool_calls if call.kind == "function"]
            )
            ctx.runs.update(run.id, error=limit_error)
            return RunProgress(status=RunStatus.failed, poll_count=poll_count)
        pending = record_tool_calls(run, upstream, ctx)
        if (action := application_steps.required_action(run, ctx)) is not None:
            # Client tools or approvals: Wait for the application, until its expiry (then action_expired).
            ctx.runs.update(run.id, status=RunStatus.requires_action, required_action=action)
            ctx.runs.events.log(
                run,
                RunEventType.action_required,
                {
                    "type": action.type.value,
                    "tool_call_ids": action.call_ids,
                    "expires_at": action.expires_at.isoformat(),
                },
                key=f"action.required#{action.round}#{action.type.value}",
            )
            return RunProgress(
                status=application_steps.AWAITING_APPLICATION,
                wait_seconds=application_steps.seconds_left(action),
                poll_count=poll_count,
                tool_calls=pending,
            )
        ctx.runs.update(run.id, status=RunStatus.requires_action)
        return RunProgress(status=RunStatus.requires_action, poll_count=poll_count, tool_calls=pending)
    if upstream.status == "completed":
        # Collect outputs works from this, instead of fetching the finished response a second time.
        ctx.runs.update(
            run.id,
            answer=upstream.answer or "",
            generated_files=upstream.files,
            outputs_of=response_id,
            citations=upstream.citations or None,  # the answer's sources (url_citation, file citations)
            # e.g. ["file_search"]: an assistant with documents answered on an engine without them (fallback)
            degraded=degraded_features(
                run, assistants_dir=ctx.tool_settings.assistants_dir, environment=ctx.run_settings.environment
            )
            or None,
        )
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
    wait = next_wait_seconds(step.settings, _call_age_seconds(run), poll_after_ms)
    return RunProgress(status=RunStatus.in_progress, wait_seconds=wait, poll_count=poll_count)


def _call_age_seconds(run: RunRecord) -> float:
    """How long the current model call has run: the backoff restarts with each call."""
    started = run.round_started_at or run.started_at
    return 0.0 if started is None else max((clock.now() - started).total_seconds(), 0.0)


def poll_budget_seconds(settings: UpstreamSettings) -> float:
    """The longest one upstream call may take: every attempt timing out, and the waits between them."""
    return settings.retry_max_attempts * settings.openai_timeout_seconds + settings.retry_budget_seconds


def _short_polls(
    run: RunRecord, upstream: UpstreamRun, step: StepInput, ctx: StepContext
) -> tuple[RunRecord, UpstreamRun]:
    """Poll about every second inside this invocation while the model call is young (check_wait_seconds),
    the run has time left and the Lambda keeps room for one more upstream call: a short model call then
    ends in one Check run, with no Wait + Check + Choice cycles. Stops early for a cancel request."""
    engine = ctx.engine(run.engine)
    while upstream.status in ("queued", "in_progress"):
        pause = short_poll_pause(
            step.settings,
            _call_age_seconds(run),
            upstream.poll_after_ms,
            remaining_seconds=remaining_seconds(),
            poll_budget_seconds=poll_budget_seconds(ctx.upstream_settings),
        )
        if pause is None or (run.deadline_at - clock.now()).total_seconds() <= pause:
            break
        _sleep(pause)
        run = ctx.runs.get(run.id)
        if run.cancel_requested or run.restarting_round:
            break
        upstream = engine.poll(run)
    return run, upstream


_sleep = time.sleep  # tests replace it


def _relay_stream(
    run: RunRecord, upstream: UpstreamRun, step: StepInput, ctx: StepContext
) -> tuple[RunRecord, UpstreamRun]:
    """A streamed run: relay its response's words into the event log (workflow/stream_relay.py) for as long
    as _short_polls would have polled; a stream that says the response ended is followed by one more poll."""
    running = upstream.status in ("queued", "in_progress")
    seconds = step.settings.check_wait_seconds - _call_age_seconds(run)
    if (remaining := remaining_seconds()) is not None:
        seconds = min(seconds, remaining - poll_budget_seconds(ctx.upstream_settings))
    seconds = min(seconds, (run.deadline_at - clock.now()).total_seconds())
    relayed = stream_relay.relay(run, ctx, seconds=seconds, final=not running)
    if relayed is run:
        return run, upstream  # nothing to relay (this engine answers in the call, or it was relayed)
    run = ctx.runs.get(run.id)  # a cancel may have come meanwhile
    if running and run.stream_cursor is not None and run.stream_cursor.ended:
        upstream = ctx.engine(run.engine).poll(run)
    return run, upstream


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
    fresh = with_message(run, ctx).model_copy(update={"response_ids": []})
    request = run_request(fresh, fresh.upstream_thread_id or "", ctx)
    with stream_relay.streaming(engine, fresh, ctx) as streamed:
        create_round(
            fresh,
            0,
            create=lambda: streamed.start(request, fresh.message),
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
