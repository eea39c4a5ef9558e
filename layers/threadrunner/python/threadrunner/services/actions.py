"""Answering a run that waits for the application (threadrunner.workflow.application_steps): client tool
outputs (POST /v1/runs/{id}/tool_outputs) and approvals (POST /v1/runs/{id}/approvals).

The answers go into the tool-call ledger (Submit tool outputs reads them from there), the run's required
action is marked answered once (a conditional write), and the run resumes through its task token with
SendTaskSuccess. A repeat of the accepted submission is answered with the run and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from threadrunner import clock
from threadrunner.errors import ConflictError, InvalidRequestError
from threadrunner.models.api_runs import ApprovalsRequest, RunOut, SubmitToolOutputsRequest
from threadrunner.models.records import (
    ActionType,
    ApprovalDecision,
    RequiredAction,
    RunRecord,
)
from threadrunner.models.run_events import RunEventType
from threadrunner.services.context import ApiContext
from threadrunner.services.runs import get_run
from threadrunner.tools.registry import error_result
from threadrunner.workflow.application_steps import pending_action, resume


def submit_tool_outputs(
    ctx: ApiContext, user_id: str, run_id: str, request: SubmitToolOutputsRequest
) -> RunOut:
    run = ctx.runs.get_for_user(run_id, user_id)
    digest = _digest(request.model_dump(mode="json"))
    action = _waiting(run, ActionType.submit_tool_outputs, digest)
    if action is None:
        return get_run(ctx, user_id, run_id)  # the accepted submission, repeated
    ids = [output.tool_call_id for output in request.tool_outputs]
    _check_ids(ids, action.call_ids, "tool_outputs")
    limit = ctx.tool_settings.tool_output_max_chars
    for index, output in enumerate(request.tool_outputs):
        if len(output.output) > limit:
            raise InvalidRequestError(
                f"the output has {len(output.output)} characters; the limit is {limit}",
                field=f"tool_outputs.{index}.output",
            )
    ledger = ctx.ledger
    now = clock.now()
    # The outputs first, then the claim: once the action is answered, Wait for the application may resume
    # the run at once (when it stores its token after the claim), and Submit tool outputs must find them.
    for output in request.tool_outputs:
        call = ledger.get(run.id, output.tool_call_id)
        stored = ledger.save_output(
            call.model_copy(
                update={
                    "output": output.output,
                    "is_error": False,
                    "finished_at": now,
                    "duration_ms": int((now - (call.started_at or now)).total_seconds() * 1000),
                    "answered_by": user_id,
                }
            )
        )
        ctx.runs.events.tool_call_completed(stored)
    claimed = _claim(ctx, run, action, user_id, digest, now)
    _log_submitted(ctx, run, action, user_id)
    _resume(ctx, claimed)
    return get_run(ctx, user_id, run_id)


def submit_approvals(ctx: ApiContext, user_id: str, run_id: str, request: ApprovalsRequest) -> RunOut:
    run = ctx.runs.get_for_user(run_id, user_id)
    digest = _digest(request.model_dump(mode="json"))
    action = _waiting(run, ActionType.approve_tool_calls, digest)
    if action is None:
        return get_run(ctx, user_id, run_id)
    _check_ids([decision.tool_call_id for decision in request.decisions], action.call_ids, "decisions")
    ledger = ctx.ledger
    now = clock.now()
    for decision in request.decisions:
        approval = ApprovalDecision(
            approved=decision.approve, reason=decision.reason, decided_by=user_id, decided_at=now
        )
        ledger.decide(run.id, decision.tool_call_id, approval)
        if not decision.approve:
            reason = f": {decision.reason}" if decision.reason else ""
            denied = error_result(f"a person denied this call of the tool{reason}")
            call = ledger.get(run.id, decision.tool_call_id)
            stored = ledger.save_output(
                call.model_copy(
                    update={
                        "output": denied.output,
                        "is_error": True,
                        "finished_at": now,
                        "duration_ms": 0,
                        "approval": approval,
                    }
                )
            )
            ctx.runs.events.tool_call_completed(stored)
    # The round's client tools, if it called any, are waited for next: the same wait, token and expiry.
    following = pending_action(
        run.model_copy(update={"required_action": None}),
        ledger.list(run.id),
        ctx.run_settings.client_tool_timeout_seconds,
    )
    if following is not None and following.type is ActionType.submit_tool_outputs:
        if not ctx.runs.advance_action(
            run.id, action.round, call_ids=following.call_ids, approvals_digest=digest
        ):
            raise ConflictError(f"run {run.id} no longer waits for these approvals")
        _log_submitted(ctx, run, action, user_id)
        return get_run(ctx, user_id, run_id)
    claimed = _claim(ctx, run, action, user_id, digest, now)
    _log_submitted(ctx, run, action, user_id)
    _resume(ctx, claimed)
    return get_run(ctx, user_id, run_id)


def _log_submitted(ctx: ApiContext, run: RunRecord, action: RequiredAction, user_id: str) -> None:
    ctx.runs.events.log(
        run,
        RunEventType.action_submitted,
        {"type": action.type.value, "tool_call_ids": action.call_ids, "by": user_id},
        key=f"action.submitted#{action.round}#{action.type.value}",
    )


def _waiting(run: RunRecord, kind: ActionType, digest: str) -> RequiredAction | None:
    """The action this submission answers; None when it repeats the accepted one. 409 when the run does
    not wait for this kind of answer (any more)."""
    action = run.required_action
    if action is not None and action.answered_at is not None and action.answer_digest == digest:
        return None
    if action is not None and kind is ActionType.approve_tool_calls and action.approvals_digest == digest:
        return None  # the accepted approvals, repeated while the run waits on for its client tools
    if (
        action is None
        or run.status != "requires_action"
        or action.type is not kind
        or action.answered_at is not None
    ):
        what = "tool outputs" if kind is ActionType.submit_tool_outputs else "approvals"
        raise ConflictError(f"run {run.id} is {run.status} and does not wait for {what}")
    if clock.now() >= action.expires_at:
        raise ConflictError(f"run {run.id} waited for the application until {action.expires_at.isoformat()}")
    return action


def _check_ids(given: Sequence[str], waiting: Sequence[str], field: str) -> None:
    seen: set[str] = set()
    for index, call_id in enumerate(given):
        if call_id not in waiting:
            raise InvalidRequestError(
                f"{call_id[:64]!r} is not a call the run waits for", field=f"{field}.{index}.tool_call_id"
            )
        if call_id in seen:
            raise InvalidRequestError(f"{call_id!r} is answered twice", field=f"{field}.{index}.tool_call_id")
        seen.add(call_id)
    if missing := [call_id for call_id in waiting if call_id not in seen]:
        raise InvalidRequestError(
            f"every waiting call must be answered at once; missing: {', '.join(missing)}", field=field
        )


def _claim(
    ctx: ApiContext, run: RunRecord, action: RequiredAction, user_id: str, digest: str, now: datetime
) -> RunRecord:
    claimed = ctx.runs.answer_action(run.id, action.round, by=user_id, digest=digest, answered_at=now)
    if claimed is None:  # answered meanwhile by another submission, or it expired
        raise ConflictError(f"run {run.id} no longer waits for this answer")
    return claimed


def _resume(ctx: ApiContext, run: RunRecord) -> None:
    """Hand the token back; without one yet, Wait for the application hands it back when it stores it."""
    token = run.required_action.task_token if run.required_action else None
    if token:
        resume(token, run.id)


def _digest(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
