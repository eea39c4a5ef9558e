"""Repairing runs whose execution died (threadrunner.run_repair): the EventBridge event Step Functions sends
when an execution's status changes, why a run or a thread's lock was repaired, and what a sweep repaired."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel

STATES_SOURCE = "aws.states"
STATUS_CHANGE = "Step Functions Execution Status Change"


class ExecutionStatus(StrEnum):
    """DescribeExecution's ``status``, and the event's."""

    running = "RUNNING"
    succeeded = "SUCCEEDED"
    failed = "FAILED"
    timed_out = "TIMED_OUT"
    aborted = "ABORTED"
    pending_redrive = "PENDING_REDRIVE"


class RepairCause(StrEnum):
    """What was wrong: the run's error code (the ``execution_*`` ones) and the ``cause`` of RunsRepaired."""

    execution_failed = "execution_failed"  # Finish run never finished (Run could not be recorded), ...
    execution_timed_out = "execution_timed_out"  # the state machine's own TimeoutSeconds
    execution_aborted = "execution_aborted"  # StopExecution, by an operator or by AWS
    execution_ended = "execution_ended"  # it succeeded, and yet its run had not ended
    execution_missing = "execution_missing"  # a started run without any execution
    execution_not_started = "execution_not_started"  # its turn came and its execution never started
    lock_of_ended_run = "lock_of_ended_run"  # an ended run still held its thread
    lock_of_missing_run = "lock_of_missing_run"  # a run that does not exist held its thread
    queue_without_lock = "queue_without_lock"  # runs waited behind nobody


# The statuses the reconciler's rule listens for, each with the error code its run ends with.
ENDED_BADLY: dict[ExecutionStatus, RepairCause] = {
    ExecutionStatus.failed: RepairCause.execution_failed,
    ExecutionStatus.timed_out: RepairCause.execution_timed_out,
    ExecutionStatus.aborted: RepairCause.execution_aborted,
}
# Every status of an execution that is over (the sweep also finds a SUCCEEDED one with its run unended).
ENDED: dict[ExecutionStatus, RepairCause] = {
    **ENDED_BADLY,
    ExecutionStatus.succeeded: RepairCause.execution_ended,
}


class ExecutionStatusChange(DeferredModel):
    """The event's ``detail``: the execution as DescribeExecution shows it (dates in epoch milliseconds).
    Its ``input``, ``output`` and ``cause`` are not read: they may hold what a step said."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str  # the run id: executions are named after their run
    status: ExecutionStatus
    start_date: int | None = Field(default=None, alias="startDate")
    stop_date: int | None = Field(default=None, alias="stopDate")
    error: str | None = None  # e.g. RunNotRecorded (the workflow's Fail state), States.Timeout


class ExecutionStatusChangeEvent(EventBridgeModel):
    """Step Functions Execution Status Change, as EventBridge delivers it to a rule's Lambda target."""

    model_config = ConfigDict(defer_build=True)  # as DeferredModel's: built when the first event is parsed

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusChange


class RepairReport(DeferredModel):
    """What one sweep repaired (each repair is also a RunsRepaired metric), and what it could not."""

    repaired: int = 0
    failed: int = 0
