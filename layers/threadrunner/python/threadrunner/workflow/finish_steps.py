"""Collect outputs and Finish run: the answer and generated files kept, then the run ended (its tool calls
closed and logged, the thread handed to its next run, the terminal status last)."""

from __future__ import annotations

import json
import logging
from typing import cast

from threadrunner import accounting, clock, history, turns
from threadrunner.engines.base import FileEngine
from threadrunner.files.outputs import copy_outputs
from threadrunner.hosted_tools import RUNS_ON_MCP
from threadrunner.models.records import RunError, RunRecord, RunStatus, ToolCallRecord
from threadrunner.models.workflow import FinishRunInput, FinishRunOutput, RunProgress, StepInput
from threadrunner.workflow.application_steps import ACTION_EXPIRED
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.deleted_runs import finish_of_deleted, progress_of_deleted, unless_run_deleted
from threadrunner.workflow.rounds import summarize_tool_outputs

logger = logging.getLogger(__name__)

SUMMARY_CHARS = 500


@unless_run_deleted(progress_of_deleted)
def collect_outputs(step: StepInput, ctx: StepContext) -> RunProgress:
    """Persist the answer and copy the generated files to S3 now: background responses are only kept
    upstream for a short while, and code interpreter containers expire when idle."""
    run = ctx.runs.get(step.run_id)
    engine = ctx.engine(run.engine)
    if run.outputs_of is not None and run.outputs_of == run.current_response_id:
        # Check run kept the finished response's answer and files: no second fetch of the response.
        answer, files = run.answer or "", run.generated_files
    else:  # checked by a Check run that kept nothing (one deployed before it did)
        upstream = engine.poll(run)
        answer, files = upstream.answer or "", upstream.files
    outputs = []
    if files:
        if ctx.blobs is None:
            raise RuntimeError("Collect outputs has no bucket to copy generated files to")
        outputs = copy_outputs(run, files, cast(FileEngine, engine), ctx.blobs)
    ctx.runs.update(run.id, answer=answer, output_files=outputs)
    return RunProgress(status=RunStatus.completed, poll_count=step.run.poll_count)


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
        run = summarize_tool_outputs(run, calls, ctx)  # before it ends: the metrics count the tool errors
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
    accounting.end_now(ctx, run, status, error)


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
    # An MCP approval request is no function call: nothing upstream waits for its output.
    open_calls = [call.call_id for call in calls if call.round == run.round and call.runs_on != RUNS_ON_MCP]
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
    if status == ACTION_EXPIRED:  # Wait for the application timed out: nobody answered the required action
        expires_at = run.required_action.expires_at.isoformat() if run.required_action else "its expiry"
        return RunStatus.timed_out, RunError(
            code=ACTION_EXPIRED,
            message=f"the application did not answer the run's required action by {expires_at}",
        )
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
