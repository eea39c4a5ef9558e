"""Repairing runs whose execution died, so that every run ends and no thread stays locked: Finish run out of
retries (the workflow's "Run could not be recorded"), the state machine's own TimeoutSeconds, an execution
stopped by an operator or by AWS, a queued run whose StartExecution kept failing.

Two ways in, one repair. The reconciler (functions/reconcile_run) gets Step Functions' status-change event
for every execution that ends FAILED, TIMED_OUT or ABORTED. The scheduled sweep (threadrunner.cleanup) asks
DescribeExecution about every run not yet ended, then checks every thread's lock and queue, so an event
that never came is made up for within one sweep.

A run is ended as Finish run ends one (workflow.finish_steps.finish_run, called here): its open tool calls are
answered and its upstream response cancelled, its outputs logged, its thread handed to the next queued run
(whose execution is started), then its status, metrics and usage in one write (threadrunner.accounting).
Everything is safe to repeat: a second event, or a run that has ended, changes nothing. Each repair adds 1
to the RunsRepaired metric, by cause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from threadrunner import accounting, aws, clock, run_metrics, turns
from threadrunner.errors import NotFoundError
from threadrunner.executions import execution_arn
from threadrunner.models.records import RunError, RunRecord, RunStatus, ThreadRecord
from threadrunner.models.repairs import (
    ENDED,
    ENDED_BADLY,
    ExecutionStatus,
    ExecutionStatusChange,
    RepairCause,
    RepairReport,
)
from threadrunner.models.workflow import FinishRunInput, RunProgress, StepError
from threadrunner.settings import repair_settings, workflow_settings
from threadrunner.workflow import context as step_context
from threadrunner.workflow import finish_steps
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)

# An execution with one of these statuses may still end its run itself.
_GOING_ON = frozenset({ExecutionStatus.running, ExecutionStatus.pending_redrive})
# Repairs followed on one thread in one sweep (each ends, starts or releases one run).
_MAX_REPAIRS_PER_THREAD = 10
_PAGE = 100
_MESSAGES = {
    RepairCause.execution_failed: "the run's workflow execution failed before it recorded the run's end",
    RepairCause.execution_timed_out: "the run's workflow execution timed out",
    RepairCause.execution_aborted: "the run's workflow execution was stopped",
    RepairCause.execution_ended: "the run's workflow execution ended without recording the run's end",
    RepairCause.execution_missing: "the run has no workflow execution",
    RepairCause.execution_not_started: "the run's workflow execution could not be started",
}


class HandOverFailed(Exception):
    """The thread went to its next queued run, whose execution could not be started (the run being repaired
    has ended all the same; a retry or the sweep starts the next one)."""


@dataclass(frozen=True)
class RepairContext:
    steps: StepContext  # what Finish run works with: a repair ends a run the way Finish run does
    stepfunctions: Any
    state_machine_arn: str
    # The sweep leaves younger runs and locks alone (see settings.RepairSettings).
    grace_seconds: float = 0

    @property
    def finishing(self) -> StepContext:
        """The steps' context, its start of the next queued run failing as HandOverFailed."""
        return replace(self.steps, start_execution=_handing_over(self.steps.start_execution))


@cache
def default_context() -> RepairContext:
    return RepairContext(
        steps=step_context.default_context(),
        stepfunctions=aws.client("stepfunctions"),
        state_machine_arn=workflow_settings().state_machine_arn,
        grace_seconds=repair_settings().repair_grace_seconds,
    )


def reconcile(change: ExecutionStatusChange, ctx: RepairContext) -> RepairCause | None:
    """An execution of the run workflow ended FAILED, TIMED_OUT or ABORTED: end its run (the execution is
    named after it) unless it has ended, and put its thread right. Every run that does not complete ends
    its execution FAILED after Finish run, so most events find nothing to do. Returns what was repaired."""
    if change.state_machine_arn != ctx.state_machine_arn or change.status not in ENDED_BADLY:
        return None  # the rule lets only these through; checking again keeps a wrong rule harmless
    return repair_run(change.name, ENDED_BADLY[change.status], ctx, execution_error=change.error)


def repair_run(
    run_id: str, cause: RepairCause, ctx: RepairContext, *, execution_error: str | None = None
) -> RepairCause | None:
    """End the run failed, with ``cause`` as its error code, unless it has ended; an ended run still holding
    its thread passes it on. Returns what was repaired (None: nothing was wrong). HandOverFailed: the run
    has ended, but the run that got its thread could not be started."""
    run = _find_run(run_id, ctx)
    if run is None:
        return None  # deleted with its thread: nothing is left to end
    if run.status.is_terminal:
        return _hand_on(run, ctx)
    error = RunError(code=cause.value, message=_message(cause, execution_error))
    try:
        _finish(run, error, ctx)
    except HandOverFailed:
        _count_if_ended(run, cause, ctx)
        raise
    return _count_if_ended(run, cause, ctx)


def sweep(ctx: RepairContext) -> RepairReport:
    """The backstop for missed events: every run not yet ended whose execution is over or missing, then
    every thread whose lock or queue is wrong. What is younger than the grace period is left alone."""
    report = RepairReport()
    now = clock.now()
    for run in _unended_runs(ctx):
        if _younger(run.created_at, now, ctx):
            continue
        try:
            report.repaired += _check_run(run, ctx) is not None
        except HandOverFailed:
            report.repaired += 1
            logger.warning("run %s ended; the run after it did not start", run.id, exc_info=True)
        except Exception:
            report.failed += 1
            logger.exception("run not repaired", extra={"run_id": run.id})
    for thread in ctx.steps.threads.held():
        try:
            report.repaired += _check_thread(thread, ctx, now)
        except Exception:
            report.failed += 1
            logger.exception("thread not repaired", extra={"thread_id": thread.id})
    return report


def _check_run(run: RunRecord, ctx: RepairContext) -> RepairCause | None:
    status = _execution_status(run.id, ctx)
    if status in _GOING_ON:
        return None
    if status is not None:
        return repair_run(run.id, ENDED[status], ctx)
    if run.status is not RunStatus.queued:
        return repair_run(run.id, RepairCause.execution_missing, ctx)
    return _end_if_orphaned(run, ctx)


def _end_if_orphaned(run: RunRecord, ctx: RepairContext) -> RepairCause | None:
    """A queued run without an execution waits for its turn, unless it is neither its thread's active run
    nor in its queue (its enqueue stopped half-way, or its thread is gone): then it would never start."""
    thread = ctx.steps.threads.find(run.user_id, run.thread_id)
    if thread is not None and (thread.active_run_id == run.id or run.id in thread.queue):
        return None  # its thread's check looks after it
    cause = RepairCause.execution_not_started
    if not _end(run, RunError(code=cause.value, message=_message(cause, None)), ctx):
        return None
    _repaired(cause, run.id, run.thread_id, ctx)
    return cause


def _check_thread(thread: ThreadRecord, ctx: RepairContext, now: datetime) -> int:
    """Put a thread's lock right, following it from run to run; how many repairs that took. A start that
    fails stops here: one StartExecution outage must not fail a whole queue in one sweep."""
    repaired = 0
    for _ in range(_MAX_REPAIRS_PER_THREAD):
        current = ctx.steps.threads.find(thread.user_id, thread.id)
        if current is None:
            return repaired
        try:
            cause = _check_lock(current, ctx, now)
        except HandOverFailed:
            logger.warning("thread %s: the run that got it did not start", thread.id, exc_info=True)
            return repaired + 1
        if cause is None:
            return repaired
        repaired += 1
    return repaired


def _check_lock(thread: ThreadRecord, ctx: RepairContext, now: datetime) -> RepairCause | None:
    holder = thread.active_run_id
    if holder is None:
        return _start_head(thread, ctx) if thread.queue else None
    run = _find_run(holder, ctx)
    if run is None:
        return _release_missing(thread, holder, ctx, now)
    if run.status.is_terminal:
        return _hand_on(run, ctx)
    if run.status is not RunStatus.queued or _younger(run.created_at, now, ctx):
        return None  # a started run: the check of unended runs asked about its execution
    if _execution_status(run.id, ctx) is not None:
        return None
    return _start_late(run, RepairCause.execution_not_started, ctx)


def _hand_on(run: RunRecord, ctx: RepairContext) -> RepairCause | None:
    """An ended run whose hand-over did not finish: it still holds its thread, or the queued run that got the
    thread from it was never started. Finish run's hand-over again, as a retried Finish run does."""
    thread = ctx.steps.threads.find(run.user_id, run.thread_id)
    holder = thread.active_run_id if thread is not None else None
    if holder is None:
        return None
    if holder == run.id:
        cause = RepairCause.lock_of_ended_run
    else:
        successor = _find_run(holder, ctx)
        # Queued before this run ended: it was waiting for this run, not a new run the API is starting.
        waited = successor is not None and successor.created_at <= (run.completed_at or clock.now())
        if not waited or successor is None or successor.status is not RunStatus.queued:
            return None
        if successor.execution_arn:
            return None
        cause = RepairCause.execution_not_started
    try:
        _finish(run, None, ctx)
    except HandOverFailed:
        _repaired(cause, holder, run.thread_id, ctx)
        raise
    _repaired(cause, holder, run.thread_id, ctx)
    return cause


def _release_missing(
    thread: ThreadRecord, run_id: str, ctx: RepairContext, now: datetime
) -> RepairCause | None:
    """The thread is held by a run that does not exist (deleted, or never written): release it; the next
    queued run gets it, and the next round of the thread's check starts it."""
    created = clock.id_time(run_id)
    if created is not None and _younger(created, now, ctx):
        return None
    ctx.steps.threads.release(thread.user_id, thread.id, run_id, ctx.steps.run_settings.thread_ttl_days)
    cause = RepairCause.lock_of_missing_run
    _repaired(cause, run_id, thread.id, ctx)
    return cause


def _start_head(thread: ThreadRecord, ctx: RepairContext) -> RepairCause | None:
    """Runs wait in the queue while no run holds the thread: the first takes the thread and is started."""
    head = thread.queue[0]
    if not ctx.steps.threads.dequeue(thread.user_id, thread.id, head):
        return None
    run = _find_run(head, ctx)
    if run is None or run.status.is_terminal:
        return RepairCause.queue_without_lock  # out of the line now, and nothing to start
    if turns.take_turn(ctx.steps.threads, thread, head) is not None:
        return RepairCause.queue_without_lock  # another run took the thread meanwhile: back in line
    return _start_late(run, RepairCause.queue_without_lock, ctx)


def _start_late(run: RunRecord, cause: RepairCause, ctx: RepairContext) -> RepairCause | None:
    """A queued run holds its thread without an execution: start it (the same name, so a start that did
    happen meanwhile is not repeated), or, when that fails too, end it failed and pass the thread on."""
    try:
        started = ctx.steps.start_execution(run.id)
    except (ClientError, BotoCoreError):
        logger.warning("run %s: its execution could not be started; it ends failed", run.id, exc_info=True)
        return repair_run(run.id, RepairCause.execution_not_started, ctx)
    ctx.steps.runs.update(run.id, execution_arn=started)
    _repaired(cause, run.id, run.thread_id, ctx)
    return cause


def _finish(run: RunRecord, error: RunError | None, ctx: RepairContext) -> None:
    """Finish run's ending of ``run`` (``error`` None: the run has ended; only the hand-over is left)."""
    failure = (
        None if error is None else StepError.model_validate({"Error": error.code, "Cause": error.message})
    )
    finish = FinishRunInput(run_id=run.id, run=RunProgress(status=run.status), error=failure)
    try:
        finish_steps.finish_run(finish, ctx.finishing)
    except HandOverFailed:
        # Finish run gives the thread away before it records the end: all but the end is done, so end it.
        current = ctx.steps.runs.get(run.id)
        if error is not None and not current.status.is_terminal:
            _end(current, error, ctx)
        raise


def _end(run: RunRecord, error: RunError, ctx: RepairContext) -> bool:
    """The run's end, metrics and usage in one write (threadrunner.accounting); False: it had ended."""
    return accounting.end_now(ctx.steps, run, RunStatus.failed, error)


def _count_if_ended(run: RunRecord, cause: RepairCause, ctx: RepairContext) -> RepairCause | None:
    ended = _find_run(run.id, ctx)
    if ended is None or ended.error is None or ended.error.code != cause.value:
        return None  # ended by something else meanwhile (or deleted): not this repair's doing
    _repaired(cause, run.id, run.thread_id, ctx)
    return cause


def _repaired(cause: RepairCause, run_id: str, thread_id: str, ctx: RepairContext) -> None:
    run_metrics.run_repaired(cause.value, environment=ctx.steps.run_settings.environment)
    logger.warning("repaired", extra={"cause": cause.value, "run_id": run_id, "thread_id": thread_id})


def _handing_over(start: Callable[[str], str]) -> Callable[[str], str]:
    def start_next(run_id: str) -> str:
        try:
            return start(run_id)
        except (ClientError, BotoCoreError) as error:
            raise HandOverFailed(f"run {run_id} got its thread, but its execution did not start") from error

    return start_next


def _execution_status(run_id: str, ctx: RepairContext) -> ExecutionStatus | None:
    """DescribeExecution's status of the run's execution (named after it); None when there is none."""
    try:
        described = ctx.stepfunctions.describe_execution(
            executionArn=execution_arn(ctx.state_machine_arn, run_id)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None
        raise
    return ExecutionStatus(described["status"])


def _unended_runs(ctx: RepairContext) -> list[RunRecord]:
    """Every run not yet ended (the sparse active_runs index), read before any is repaired."""
    runs: list[RunRecord] = []
    after: dict[str, Any] | None = None
    while True:
        page, after = ctx.steps.runs.list_active(limit=_PAGE, after=after)
        runs.extend(page)
        if after is None:
            return runs


def _find_run(run_id: str, ctx: RepairContext) -> RunRecord | None:
    try:
        return ctx.steps.runs.get(run_id)
    except NotFoundError:
        return None


def _younger(moment: datetime, now: datetime, ctx: RepairContext) -> bool:
    return (now - moment).total_seconds() < ctx.grace_seconds


def _message(cause: RepairCause, execution_error: str | None) -> str:
    message = _MESSAGES[cause]
    # The error's name only (e.g. RunNotRecorded): its cause may quote what a step said.
    return f"{message} ({execution_error[:100]})" if execution_error else message
