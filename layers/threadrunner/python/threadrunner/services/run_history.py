"""What happened, over the API: a thread's runs, newest first (GET /v1/threads/{thread_id}/runs), and a run's
execution state by state from its Step Functions history (GET /v1/runs/{run_id}/trace)."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from threadrunner import aws
from threadrunner.errors import ServiceUnavailableError
from threadrunner.execution_trace import build_trace, execution_history, execution_status
from threadrunner.models.api_runs import (
    RunPage,
    RunTraceOut,
    TraceExecutionOut,
    TraceStateOut,
    execution_console_url,
)
from threadrunner.services import runs
from threadrunner.services.context import ApiContext

logger = logging.getLogger(__name__)

# THREADRUNNER_ENVIRONMENT on the local stack (local/stack.py): no console there, the trace is the link.
LOCAL_ENVIRONMENT = "local"


def list_thread_runs(
    ctx: ApiContext, user_id: str, thread_id: str, *, limit: int, after: str | None
) -> RunPage:
    thread = ctx.threads.get(user_id, thread_id)  # the caller's, and live
    page, more = ctx.runs.page_for_thread(thread.id, limit=limit, after=after)
    return RunPage(
        runs=[runs.run_out(ctx, run, thread) for run in page],
        next=page[-1].id if more and page else None,
    )


def get_run_trace(
    ctx: ApiContext,
    user_id: str,
    run_id: str,
    *,
    operator: bool,
    api_url: str,
    stepfunctions: Any | None = None,
) -> RunTraceOut:
    """The run's owner, or an operator, reads its execution (``stepfunctions``: boto3's client, the
    default one unless given). A run that never got an execution has no states and no status."""
    run = ctx.runs.get(run_id) if operator else ctx.runs.get_for_user(run_id, user_id)
    if run.user_id != user_id:
        logger.info(
            "an operator read another user's run trace", extra={"operator": user_id, "run_id": run_id}
        )
    if not run.execution_arn:
        return RunTraceOut(
            states=[], transitions=0, execution=TraceExecutionOut(arn=None, console_url=None, status=None)
        )
    events = _history(stepfunctions or aws.client("stepfunctions"), run.execution_arn)
    states = [
        TraceStateOut(
            name=step.name,
            entered_at=step.started_at,
            exited_at=step.ended_at,
            duration_ms=step.duration_ms,
            error=step.error,  # its name only: a cause may quote what the state was given
        )
        for step in build_trace(events)
    ]
    return RunTraceOut(
        states=states,
        transitions=len(states),  # one visit per StateEntered event
        execution=TraceExecutionOut(
            arn=run.execution_arn,
            console_url=_console_url(ctx, run.id, run.execution_arn, api_url),
            status=execution_status(events),
        ),
    )


def _history(stepfunctions: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's events; none when Step Functions no longer has it (its history is kept 90 days)."""
    try:
        return execution_history(stepfunctions, execution_arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return []
        raise ServiceUnavailableError("the run's execution history could not be read; try again") from error
    except BotoCoreError as error:
        raise ServiceUnavailableError("the run's execution history could not be read; try again") from error


def _console_url(ctx: ApiContext, run_id: str, execution_arn: str, api_url: str) -> str:
    if ctx.run_settings.environment == LOCAL_ENVIRONMENT:
        return f"{api_url}/v1/runs/{run_id}/trace"
    return execution_console_url(ctx.workflow_settings.region, execution_arn)
