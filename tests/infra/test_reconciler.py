"""The reconciler in the template: the rule that hands it this state machine's failed, timed-out and aborted
executions, retries and dead letters on both legs, what it (and the sweep, which repairs with its code) may
do, and the RunsRepaired alarm and dashboard widget."""

from __future__ import annotations

import json
from typing import Any

from threadrunner.models.repairs import RepairCause

from infra.constants import FunctionName
from tests.infra.synth import Synthesized, actions, render, resources_of


def _grants(synthesized: Synthesized, name: FunctionName) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for statement in synthesized.role_statements(name):
        for action in actions(statement):
            allowed.setdefault(action, set()).update(str(render(r)) for r in resources_of(statement))
    return allowed


def _rule(synthesized: Synthesized) -> dict[str, Any]:
    reconciler, _ = synthesized.function(FunctionName.reconcile_run)
    (rule,) = [
        rule["Properties"]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if any(
            render(target["Arn"]) == f"<{reconciler}.Arn>" for target in rule["Properties"].get("Targets", [])
        )
    ]
    return rule


def _queue_of(synthesized: Synthesized) -> str:
    return synthesized.stack.resolve(synthesized.stack.reconciler.dead_letters.queue_arn)["Fn::GetAtt"][0]


def test_the_rule_hands_exactly_this_state_machines_failed_timed_out_and_aborted_executions_over(
    dev: Synthesized,
) -> None:
    machine, _ = dev.only("AWS::StepFunctions::StateMachine")

    pattern = _rule(dev)["EventPattern"]

    assert pattern == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"Ref": machine}], "status": ["ABORTED", "FAILED", "TIMED_OUT"]},
    }


def test_deliveries_and_invocations_are_retried_then_dead_lettered_with_an_alarm(dev: Synthesized) -> None:
    reconciler, _ = dev.function(FunctionName.reconcile_run)
    queue = f"<{_queue_of(dev)}.Arn>"

    (target,) = _rule(dev)["Targets"]
    # EventBridge's delivery to the function
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert render(target["DeadLetterConfig"]["Arn"]) == queue
    # Lambda's own retries of a failing invocation (asynchronous: EventBridge does not see the failure)
    (invoke,) = [
        config["Properties"]
        for config in dev.resources("AWS::Lambda::EventInvokeConfig").values()
        if render(config["Properties"]["FunctionName"]) == f"<{reconciler}>"
    ]
    assert invoke["MaximumRetryAttempts"] == 2
    assert render(invoke["DestinationConfig"]["OnFailure"]["Destination"]) == queue
    # and a message there raises an alarm on the topic
    alarms = [
        alarm["Properties"]
        for alarm in dev.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Dimensions", [{}])[0].get("Value")
        == {"Fn::GetAtt": [_queue_of(dev), "QueueName"]}
    ]
    assert len(alarms) == 1 and alarms[0]["Threshold"] == 1 and alarms[0]["AlarmActions"]


def test_the_reconciler_may_end_runs_and_start_the_next_as_finish_run_does_and_nothing_more(
    dev: Synthesized,
) -> None:
    machine, _ = dev.only("AWS::StepFunctions::StateMachine")
    finish_run = _grants(dev, FunctionName.finish_run)

    allowed = _grants(dev, FunctionName.reconcile_run)

    # the same data as Finish run: both tables, the thread's log, its large bodies
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "s3:PutObject"):
        assert allowed[action] == finish_run[action], action
    assert "dynamodb:Scan" not in allowed and "s3:DeleteObject" not in allowed
    # it starts the next queued run on this state machine, and describes or stops nothing
    assert allowed["states:StartExecution"] == {f"<{machine}>"}
    assert {action for action in allowed if action.startswith("states:")} == {"states:StartExecution"}
    # it reads the key (to cancel the upstream response and answer open tool calls)
    secret, _ = dev.upstream_secret()
    assert allowed["secretsmanager:GetSecretValue"] == {f"<{secret}>"}
    assert not [action for action in allowed if action.startswith(("lambda:", "sqs:ReceiveMessage"))]


def test_the_sweep_repairs_with_the_same_rights_and_describes_this_state_machines_executions(
    dev: Synthesized,
) -> None:
    machine, _ = dev.only("AWS::StepFunctions::StateMachine")
    executions = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"

    allowed = _grants(dev, FunctionName.sweep_threads)

    assert allowed["states:StartExecution"] == {f"<{machine}>"}
    assert allowed["states:DescribeExecution"] == {executions}
    assert {action for action in allowed if action.startswith("states:")} == {
        "states:StartExecution",
        "states:DescribeExecution",
    }
    # Only the two APIs, Finish run and the two repairers start runs.
    starters = {name for name in FunctionName if "states:StartExecution" in _grants(dev, name)}
    assert starters == {
        FunctionName.api,
        FunctionName.compat_api,
        FunctionName.finish_run,
        FunctionName.reconcile_run,
        FunctionName.sweep_threads,
    }


def test_every_repair_is_alarmed_on_and_graphed_by_cause(dev: Synthesized) -> None:
    (repaired,) = [
        alarm["Properties"]
        for alarm in dev.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "RunsRepaired"
    ]
    topic, _ = dev.only("AWS::SNS::Topic")
    assert repaired["Namespace"] == "threadrunner" and repaired["Statistic"] == "Sum"
    assert repaired["Dimensions"] == [{"Name": "environment", "Value": "dev"}]
    assert repaired["Threshold"] == 1
    assert [render(action) for action in repaired["AlarmActions"]] == [f"<{topic}>"]

    _, dashboard = dev.only("AWS::CloudWatch::Dashboard")
    body = json.loads(render(dashboard["Properties"]["DashboardBody"]))
    (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == "Runs repaired, by cause"]
    causes = {metric[metric.index("cause") + 1] for metric in widget["properties"]["metrics"]}
    assert causes == {cause.value for cause in RepairCause}
