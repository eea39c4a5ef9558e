"""Waiting for the application: client tools (the application runs them) and approval gates (a person
approves a server tool's call before it runs).

Check run records the calls (tool_steps.record_tool_calls) and, when some wait for the application, puts a
``required_action`` on the run and answers ``awaiting_application``; "What does the run need?" sends that to
"Wait for the application" (``lambda:invoke.waitForTaskToken``), whose Lambda (``wait_for_application``)
only keeps the task token on the run. The API (threadrunner.services.actions) records the answers in the
tool-call ledger and hands the token back with SendTaskSuccess; the run goes on to Run tools (approved calls
run there; client outputs and denials are in the ledger already) and Submit tool outputs. Nobody answering
before ``expires_at`` is States.Timeout: the run ends timed_out with ``action_expired`` (Finish run).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta

from pydantic import BaseModel

from threadrunner import aws, clock
from threadrunner.models.records import ActionType, RequiredAction, RunRecord, ToolCallRecord
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)

# The workflow's status for a run whose calls wait for the application (the record says requires_action).
AWAITING_APPLICATION = "awaiting_application"
# Wait for the application's Catch puts this status in $.run when nobody answered in time.
ACTION_EXPIRED = "action_expired"


class WaitInput(BaseModel):
    run_id: str
    task_token: str


class WaitOutput(BaseModel):
    stored: bool


def required_action(run: RunRecord, ctx: StepContext) -> RequiredAction | None:
    """What the current round's calls need from the application, or None (Check run)."""
    return pending_action(run, ctx.ledger.list(run.id), ctx.run_settings.client_tool_timeout_seconds)


def pending_action(run: RunRecord, calls: list[ToolCallRecord], seconds: int) -> RequiredAction | None:
    """What the current round's calls (``calls``: the run's ledger) need from the application, or None.
    Approvals come first: once they are decided, a round that also called client tools waits on to their
    outputs (the same wait)."""
    waiting = [
        call
        for call in calls
        if call.round == run.round and call.waits_for and call.output is None and call.approval is None
    ]
    if not waiting:
        return None
    if run.required_action is not None and run.required_action.round == run.round:
        return run.required_action  # a Check run repeated: the same wait, the same expiry
    approvals = [call.call_id for call in waiting if call.waits_for == "approval"]
    kind = ActionType.approve_tool_calls if approvals else ActionType.submit_tool_outputs
    return RequiredAction(
        type=kind,
        round=run.round,
        call_ids=approvals or [call.call_id for call in waiting],
        expires_at=clock.now() + timedelta(seconds=seconds),
    )


def seconds_left(action: RequiredAction) -> int:
    """Wait for the application's TimeoutSecondsPath: at least 1 (Step Functions takes positive integers)."""
    return max(1, math.ceil((action.expires_at - clock.now()).total_seconds()))


def wait_for_application(step: WaitInput, ctx: StepContext) -> WaitOutput:
    """Keep the task token on the run. If the application answered first, hand the token back now."""
    run = ctx.runs.find(step.run_id)
    action = run.required_action if run else None
    if action is None:  # the run was deleted meanwhile: the wait times out (or the execution is stopped)
        logger.warning("run %s no longer waits for the application", step.run_id)
        return WaitOutput(stored=False)
    if ctx.runs.store_action_token(step.run_id, action.round, step.task_token):
        if ctx.runs.get(step.run_id).cancel_requested:  # cancelled before the token was there to fail
            abandon(step.task_token, step.run_id)
        return WaitOutput(stored=True)
    resume(step.task_token, step.run_id)  # answered before the token was stored
    return WaitOutput(stored=False)


def resume(token: str, run_id: str) -> bool:
    """SendTaskSuccess with ids only; False when the wait is over already (answered twice, or expired)."""
    client = aws.client("stepfunctions")
    try:
        client.send_task_success(taskToken=token, output=json.dumps({"run_id": run_id}))
    except (
        client.exceptions.TaskTimedOut,
        client.exceptions.InvalidToken,
        client.exceptions.TaskDoesNotExist,
    ):
        logger.warning("run %s: its wait for the application was over already", run_id)
        return False
    return True


# Wait for the application's Catch sends this error to "Cancelled while waiting" (the run ends cancelled).
RUN_CANCELLED = "RunCancelled"


def abandon(token: str, run_id: str) -> bool:
    """POST /v1/runs/{id}/cancel on a run waiting for the application: end the wait (SendTaskFailure)."""
    client = aws.client("stepfunctions")
    try:
        client.send_task_failure(taskToken=token, error=RUN_CANCELLED, cause="the run was cancelled")
    except (
        client.exceptions.TaskTimedOut,
        client.exceptions.InvalidToken,
        client.exceptions.TaskDoesNotExist,
    ):
        return False
    return True
