"""Webhook completion: "Wait for model" as a callback task instead of a Wait state (``completion: webhook``).

:func:`await_model` runs inside the ``lambda:invoke.waitForTaskToken`` task: it records the task token under
the run's current response id and returns; the execution then sleeps (no transitions, no Lambda time) until
:func:`handle_response_event` (the ``POST /v1/webhooks/openai`` Lambda) calls SendTaskSuccess with
``{"response_id", "status"}``, or the task's HeartbeatSeconds/TimeoutSeconds pass and the workflow falls back to
one poll (Check run). Either way Check run reads the response itself: the webhook only says "look now".

Webhooks are at-least-once, unordered and may never come; see stores/response_waits.py for how an early one is
kept and why duplicates and late ones are no-ops.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadrunner.stores.response_waits import ResponseWaitStore

logger = logging.getLogger(__name__)

RESPONSE_EVENTS = {
    "response.completed": "completed",
    "response.failed": "failed",
    "response.cancelled": "cancelled",
    "response.incomplete": "incomplete",
}
# Only background responses end with a webhook: a run on another engine (chat answers inline, the
# assistants engine sends none) is resumed at once and polled by Check run.
WEBHOOK_ENGINES = frozenset({"responses"})
# SendTaskSuccess on a token whose task ended (resumed already, timed out, execution stopped): nothing to do.
SPENT_TOKEN_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class AwaitModelInput(BaseModel):
    run_id: str
    task_token: str


class AwaitModelOutput(BaseModel):
    response_id: str | None
    resumed: bool  # True: the response had ended already (an early webhook), so this step resumed the task


@dataclass(frozen=True)
class WebhookOutcome:
    response_id: str | None
    resumed: bool = False
    duplicate: bool = False
    ignored: bool = False  # not a response.* event this workflow waits for


def resume(stepfunctions: Any, task_token: str, response_id: str | None, status: str) -> bool:
    """SendTaskSuccess with ids and status only; False if the token was spent already (a no-op)."""
    try:
        stepfunctions.send_task_success(
            taskToken=task_token, output=json.dumps({"response_id": response_id, "status": status})
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in SPENT_TOKEN_ERRORS:
            logger.info("task token already spent", extra={"response_id": response_id})
            return False
        raise
    return True


def await_model(
    step: AwaitModelInput, *, runs: Any, waits: ResponseWaitStore, stepfunctions: Any
) -> AwaitModelOutput:
    """Record who waits for the run's current response; resume at once if it ended already (or if there is
    no response to wait for, so that Check run decides, or the run streams, so that Check run relays)."""
    run = runs.get(step.run_id)
    response_id = run.response_ids[-1] if run.response_ids else None
    # A streamed run is not left asleep until the webhook: Check run relays the model's words as they come.
    if response_id is None or run.engine not in WEBHOOK_ENGINES or run.stream:
        resume(stepfunctions, step.task_token, response_id, "poll")
        return AwaitModelOutput(response_id=response_id, resumed=True)
    wait = waits.record_token(response_id, step.task_token, step.run_id)
    if wait.status is not None:  # the webhook came first: it found no token, so resuming is ours to do
        resume(stepfunctions, step.task_token, response_id, wait.status)
        return AwaitModelOutput(response_id=response_id, resumed=True)
    return AwaitModelOutput(response_id=response_id, resumed=False)


def handle_response_event(
    event_type: str, response_id: str | None, *, waits: ResponseWaitStore, stepfunctions: Any
) -> WebhookOutcome:
    """A verified webhook event: record the response's end once and resume its waiter, if any."""
    status = RESPONSE_EVENTS.get(event_type)
    if status is None or not response_id:
        return WebhookOutcome(response_id=response_id, ignored=True)
    wait = waits.record_status(response_id, status)
    if wait is None:
        return WebhookOutcome(response_id=response_id, duplicate=True)
    if wait.task_token is None:  # early, or nobody waits for this response: the marker is kept (TTL)
        return WebhookOutcome(response_id=response_id)
    return WebhookOutcome(
        response_id=response_id, resumed=resume(stepfunctions, wait.task_token, response_id, status)
    )


def wake(response_id: str, *, waits: ResponseWaitStore, stepfunctions: Any) -> bool:
    """Cut a webhook wait short (a cancel: Check run cancels the response upstream); False if nobody waits."""
    wait = waits.get(response_id)
    if wait is None or wait.task_token is None or wait.status is not None:
        return False
    return resume(stepfunctions, wait.task_token, response_id, "cancel_requested")
