"""Thread cleanup in the template: the TTL stream with its filter, retries and dead letters, the delete
hand-over, the sweep's schedule, and the alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constants import FunctionName
from tests.infra.synth import Synthesized, render


def _logical_id(synthesized: Synthesized, construct: Any) -> str:
    return str(synthesized.stack.resolve(construct.node.default_child.logical_id))


def _queue(synthesized: Synthesized) -> str:
    """The cleanup dead-letter queue (file staging has its own)."""
    return _logical_id(synthesized, synthesized.stack.cleanup.dead_letters)


def test_ttl_removals_of_threads_and_nothing_else_reach_clean_up_thread(dev: Synthesized) -> None:
    threads = dev.stack.resolve(dev.stack.storage.threads_table.node.default_child.logical_id)  # type: ignore[union-attr]
    clean_up = dev.function(FunctionName.clean_up_thread)[0]
    # the threads table's one mapping (the runs table's stream feeds the run event fan-out: test_run_events.py)
    (properties,) = [
        mapping["Properties"]
        for mapping in dev.resources("AWS::Lambda::EventSourceMapping").values()
        if render(mapping["Properties"]["EventSourceArn"]) == f"<{threads}.StreamArn>"
    ]

    assert render(properties["EventSourceArn"]) == f"<{threads}.StreamArn>"
    assert render(properties["FunctionName"]) == f"<{clean_up}>"
    (pattern,) = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert pattern == {
        "eventName": ["REMOVE"],
        "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
        "dynamodb": {"OldImage": {"kind": {"S": ["thread"]}}},
    }
    # failed records are retried alone, then their batch's coordinates go to the dead-letter queue
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["MaximumRetryAttempts"] == 4
    destination = properties["DestinationConfig"]["OnFailure"]["Destination"]
    assert render(destination) == f"<{_queue(dev)}.Arn>"


def test_requested_deletes_are_retried_then_dead_lettered_with_their_event(dev: Synthesized) -> None:
    delete_threads = f"<{dev.function(FunctionName.delete_threads)[0]}>"
    (properties,) = [  # (the reconciler has its own: tests/infra/test_reconciler.py)
        config["Properties"]
        for config in dev.resources("AWS::Lambda::EventInvokeConfig").values()
        if render(config["Properties"]["FunctionName"]) == delete_threads
    ]

    assert properties["MaximumRetryAttempts"] == 2
    assert render(properties["DestinationConfig"]["OnFailure"]["Destination"]) == f"<{_queue(dev)}.Arn>"


@pytest.mark.parametrize(("fixture", "expression"), [("dev", "rate(1 day)"), ("prod", "cron(15 3 * * ? *)")])
def test_the_sweep_runs_on_the_environments_schedule(
    fixture: str, expression: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(fixture)
    rule = synthesized.template["Resources"][
        _logical_id(synthesized, synthesized.stack.cleanup.sweep_schedule)
    ]
    sweep = synthesized.function(FunctionName.sweep_threads)[0]

    assert rule["Properties"]["ScheduleExpression"] == expression
    assert [render(target["Arn"]) for target in rule["Properties"]["Targets"]] == [f"<{sweep}.Arn>"]


def test_dead_letters_and_given_up_cleanups_raise_alarms(dev: Synthesized) -> None:
    alarms = {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for key, alarm in dev.resources("AWS::CloudWatch::Alarm").items()
        # the cleanup's own, not the metric-math ones (tests/infra/test_monitoring.py)
        if key.startswith("Cleanup") and "MetricName" in alarm["Properties"]
    }
    dead_letters = alarms["ApproximateNumberOfMessagesVisible"]
    assert render(dead_letters["Dimensions"][0]["Value"]) == f"<{_queue(dev)}.QueueName>"
    assert dead_letters["Threshold"] == 1
    assert dead_letters["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    given_up = alarms["CleanupsGivenUp"]
    assert given_up["Namespace"] == "threadrunner" and given_up["Threshold"] == 1


def test_the_dead_letter_queue_is_encrypted_and_keeps_messages_two_weeks(dev: Synthesized) -> None:
    queue_id = _queue(dev)
    queue = dev.template["Resources"][queue_id]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        policy
        for policy in dev.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
