"""Starting a run's execution (moto Step Functions): the execution is named after the run, so a retried
StartExecution (a timeout, Finish run handing the lock over twice) never starts a second one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from threadrunner.executions import ExecutionStarter, execution_arn
from threadrunner.settings import RunSettings

WAIT_FOREVER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@pytest.fixture
def stepfunctions() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        machine = client.create_state_machine(
            name="run",
            definition=json.dumps(WAIT_FOREVER),
            roleArn="arn:aws:iam::123456789012:role/run",
            type="STANDARD",
        )
        yield client, machine["stateMachineArn"]


def test_a_retried_start_for_the_same_run_starts_no_second_execution(stepfunctions: tuple[Any, str]) -> None:
    client, machine_arn = stepfunctions
    start = ExecutionStarter(client, machine_arn, RunSettings())
    # Given a run whose execution does not exist yet
    run_id = "run_01jdxq8w5m7n0p2r4t6v8x0z2b"
    assert client.list_executions(stateMachineArn=machine_arn)["executions"] == []
    # When its start is tried, then retried (the first answer was lost), then retried by another caller
    arns = [start(run_id) for _ in range(3)]
    # Then every attempt answers the one execution named after the run, and only one was started
    assert arns == [execution_arn(machine_arn, run_id)] * 3
    executions = client.list_executions(stateMachineArn=machine_arn)["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [(run_id, "RUNNING")]


def test_another_run_gets_its_own_execution(stepfunctions: tuple[Any, str]) -> None:
    client, machine_arn = stepfunctions
    start = ExecutionStarter(client, machine_arn, RunSettings())

    first, second = start("run_01jdxq8w5m7n0p2r4t6v8x0z2b"), start("run_01jdxq8w5m7n0p2r4t6v8x0z2c")

    assert first != second
    assert len(client.list_executions(stateMachineArn=machine_arn)["executions"]) == 2
