"""The reconciler's boundary: the status-change event as Step Functions sends it (and as the local stack makes
it), the RunsRepaired metric's dimensions, and the age of an id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError
from threadrunner import clock, run_metrics
from threadrunner.models.repairs import ENDED_BADLY, ExecutionStatus, ExecutionStatusChangeEvent, RepairCause

from local.execution_events import DELIVERED_STATUSES, status_change_event
from tests.support.emf import dimensions_of, emf_documents, metric_names

# As the Step Functions developer guide shows it ("EventBridge events for Step Functions"), for an abort.
ABORTED = {
    "version": "0",
    "id": "315c1398-40ff-a850-213b-158f73e60175",
    "detail-type": "Step Functions Execution Status Change",
    "source": "aws.states",
    "account": "123456789012",
    "time": "2019-02-26T19:42:21Z",
    "region": "us-east-1",
    "resources": ["arn:aws:states:us-east-1:123456789012:execution:threadrunner-dev-run:run_01jd"],
    "detail": {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:threadrunner-dev-run:run_01jd",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:threadrunner-dev-run",
        "name": "run_01jd",
        "status": "ABORTED",
        "startDate": 1551225014968,
        "stopDate": 1551225017576,
        "input": "{}",
        "output": None,
        "inputDetails": {"included": True},
        "outputDetails": None,
        "error": None,
        "cause": None,
    },
}


def test_the_documented_event_parses_to_the_run_and_the_cause() -> None:
    event = ExecutionStatusChangeEvent.model_validate(ABORTED)

    assert event.detail.name == "run_01jd"
    assert event.detail.status is ExecutionStatus.aborted
    assert ENDED_BADLY[event.detail.status] is RepairCause.execution_aborted
    assert event.detail.stop_date == 1551225017576 and event.detail.error is None


@pytest.mark.parametrize(
    "change",
    [
        {"source": "aws.s3"},
        {"detail-type": "Object Created"},
        {"detail": {**ABORTED["detail"], "status": "LOST"}},
    ],
)
def test_anything_else_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ExecutionStatusChangeEvent.model_validate({**ABORTED, **change})


def test_the_local_stack_makes_the_same_event_for_the_statuses_the_rule_lets_through() -> None:
    assert (
        {status.value for status in ENDED_BADLY} == DELIVERED_STATUSES == {"FAILED", "TIMED_OUT", "ABORTED"}
    )
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    execution = SimpleNamespace(
        exec_arn=ABORTED["detail"]["executionArn"],  # type: ignore[index]
        state_machine_arn=ABORTED["detail"]["stateMachineArn"],  # type: ignore[index]
        name="run_01jd",
        status="FAILED",
        start_date=started,
        stop_date=started + timedelta(seconds=3),
        execution_input=json.dumps({"run_id": "run_01jd"}),
        error="RunNotRecorded",
        cause="Finish run kept failing",
    )

    event = status_change_event(cast(Any, execution), account="123456789012", region="us-east-1")

    parsed = ExecutionStatusChangeEvent.model_validate(event)
    assert parsed.detail.status is ExecutionStatus.failed and parsed.detail.error == "RunNotRecorded"
    assert parsed.detail.stop_date == parsed.detail.start_date + 3000  # type: ignore[operator]
    assert set(event) == set(ABORTED) and set(event["detail"]) == set(ABORTED["detail"])  # type: ignore[arg-type]


def test_a_repair_is_counted_by_environment_and_by_cause(capsys: pytest.CaptureFixture[str]) -> None:
    run_metrics.run_repaired("execution_aborted", environment="prod")

    documents = emf_documents(capsys.readouterr().out)
    assert [dimensions_of(document) for document in documents] == [
        {"environment": "prod"},
        {"environment": "prod", "cause": "execution_aborted"},
    ]
    assert all(metric_names(document) == {run_metrics.RUNS_REPAIRED} for document in documents)


def test_an_ids_time_is_when_it_was_made() -> None:
    before = clock.now()
    made = clock.id_time(clock.new_id("run"))

    assert made is not None and before - timedelta(milliseconds=1) <= made <= clock.now()
    assert clock.id_time("run_gone") is None and clock.id_time("not-an-id") is None
