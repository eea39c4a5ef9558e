"""Step Functions' Execution Status Change events, which moto does not send: when an execution of the local
stack's state machine ends FAILED, TIMED_OUT or ABORTED, the same EventBridge event goes to reconcile_run, as
the rule of infra/constructs/reconciler.py sends it in AWS.

moto's interpreter reports an execution's end through ``BaseExecutionWorkerCommunication.terminated`` (in
the execution's own thread, once its status is set): :func:`deliver_status_changes` hooks in there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from threadrunner.models.repairs import ENDED_BADLY, STATES_SOURCE, STATUS_CHANGE

from local.lambdas import LambdaDispatch

logger = logging.getLogger(__name__)

# What the rule's pattern lets through, besides the state machine; and its target.
DELIVERED_STATUSES = frozenset(status.value for status in ENDED_BADLY)
RECONCILER = "reconcile_run"


def status_change_event(execution: Execution, *, account: str, region: str) -> dict[str, Any]:
    """The event EventBridge hands a rule's target for ``execution``, which has ended."""
    stopped = execution.stop_date or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": STATES_SOURCE,
        "account": account,
        "time": stopped.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.status,
            "startDate": _millis(execution.start_date),
            "stopDate": _millis(stopped),
            "input": execution.execution_input,
            "output": None,
            "inputDetails": {"included": True},
            "outputDetails": None,
            "error": execution.error or None,
            "cause": execution.cause or None,
        },
    }


@contextmanager
def deliver_status_changes(state_machine_arn: str, lambdas: LambdaDispatch) -> Iterator[None]:
    """While the block runs, each execution of ``state_machine_arn`` that ends with one of the delivered
    statuses is handed to reconcile_run as a status-change event, once, before its thread ends. A failed
    invocation is logged (in AWS, Lambda would retry it, then dead-letter it)."""
    terminated = BaseExecutionWorkerCommunication.terminated

    def terminated_and_delivered(communication: BaseExecutionWorkerCommunication) -> None:
        terminated(communication)
        execution = communication.execution
        if execution.state_machine_arn != state_machine_arn:
            return
        if execution.exec_status is None or execution.exec_status.value not in DELIVERED_STATUSES:
            return
        event = status_change_event(execution, account=lambdas.account, region=lambdas.region)
        try:
            outcome = lambdas.invoke(lambdas.function_name(RECONCILER), event)
        except Exception:  # the interpreter's thread must end whatever happens
            logger.exception("the status change of %s was not delivered", execution.exec_arn)
            return
        if outcome.error is not None:
            logger.warning("%s failed on %s: %s", RECONCILER, execution.exec_arn, outcome.error.error_message)

    with mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated_and_delivered):
        yield


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)
