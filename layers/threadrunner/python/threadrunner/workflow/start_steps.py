"""Start run: round 0 of a run, on its own engine or, when that one has an outage, on the fallback
engine (threadrunner/fallback.py), in the thread's upstream thread."""

from __future__ import annotations

import logging
from typing import Any

from threadrunner import clock, fallback, run_metrics
from threadrunner.engines.base import Engine
from threadrunner.errors import (
    FileNotInlinable,
    UpstreamError,
    UpstreamNotFound,
    UpstreamsFailed,
    UpstreamThreadGone,
)
from threadrunner.knowledge_lookup import degraded_features
from threadrunner.models.records import RunRecord, RunStatus
from threadrunner.models.run_events import RunEventType
from threadrunner.models.workflow import RunProgress, StepInput
from threadrunner.workflow import stream_relay
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.deleted_runs import progress_of_deleted, unless_run_deleted
from threadrunner.workflow.rounds import create_round, run_model, run_request, with_message

logger = logging.getLogger(__name__)


@unless_run_deleted(progress_of_deleted)
def start_run(step: StepInput, ctx: StepContext) -> RunProgress:
    run = with_message(ctx.runs.get(step.run_id), ctx)
    # First: its model call's events follow (the engine is the one planned; a fallback shows on the run).
    ctx.runs.events.log(run, RunEventType.run_started, {"engine": run.engine}, key="run.started")
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
        model=run_model(run, ctx),
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
    fields: dict[str, Any] = {
        "engine": route.engine,
        "fallback_from": route.fallback_from,
        "fallback_reason": route.reason,
    }
    # Said at once, never silently: e.g. ["file_search"] for an assistant with documents moving to chat.
    degraded = degraded_features(
        run.model_copy(update=fields),
        assistants_dir=ctx.tool_settings.assistants_dir,
        environment=ctx.run_settings.environment,
    )
    ctx.runs.update(run.id, **fields, degraded=degraded or None)
    fields["degraded"] = degraded
    logger.warning("run %s moves from %s to %s: %s", run.id, route.fallback_from, route.engine, route.reason)
    run_metrics.count(
        run_metrics.FALLBACKS, environment=ctx.run_settings.environment, assistant=run.assistant
    )
    return run.model_copy(update=fields)


def _start_on(run: RunRecord, ctx: StepContext) -> str:
    """Round 0 on the run's engine; returns the upstream thread id."""
    engine = ctx.engine(run.engine)
    upstream_thread_id = _upstream_thread(run, engine, ctx)
    request = run_request(run, upstream_thread_id, ctx)
    # where a create whose answer was lost is looked for and cancelled
    run = run.model_copy(update={"upstream_thread_id": upstream_thread_id})
    try:
        with stream_relay.streaming(
            engine, run, ctx
        ) as streamed:  # "stream": true (the chat engine logs here)
            create_round(
                run,
                0,
                create=lambda: streamed.start(request, run.message),
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
