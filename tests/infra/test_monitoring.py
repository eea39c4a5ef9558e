"""Monitoring in the template: the dashboard and its widgets, the alarms on the run metrics (metric math for
the failure rate), the encrypted alarm topic, the operators' group, and cost settings reaching the functions."""

from __future__ import annotations

import json
from typing import Any

from infra.constants import FunctionName
from tests.infra.synth import Synthesized, render, synthesize_with


def _alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Alarms by the metric they watch (the metric-math one under ``math``)."""
    found = {}
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        found[properties.get("MetricName", "math")] = properties
    return found


def _topic(synthesized: Synthesized) -> str:
    topic_id, _ = synthesized.only("AWS::SNS::Topic")
    return topic_id


def test_the_dashboard_shows_runs_durations_tokens_cost_tool_errors_throttles_and_dead_letters(
    dev: Synthesized,
) -> None:
    _, dashboard = dev.only("AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == "threadrunner-dev"
    body = json.loads(render(dashboard["Properties"]["DashboardBody"]))
    titles = {widget["properties"].get("title") for widget in body["widgets"]}
    assert {
        "Alarms",
        "Runs by status",
        "Failure rate (%)",
        "Run duration (s)",
        "Tokens per hour",
        "Estimated cost per day (USD)",
        "Tool calls and errors",
        "Throttles",
        "Dead letters (cleanup)",
    } <= titles
    text = json.dumps(body)
    for metric in (
        "RunsCompleted",
        "RunsFailed",
        "RunsTimedOut",
        "RunsCancelled",
        "PromptTokens",
        "CachedTokens",
        "ReasoningTokens",
        "EstimatedCost",
        "ToolErrors",
        "Throttles",
        "ExecutionThrottled",
        "ApproximateNumberOfMessagesVisible",
    ):
        assert f'"{metric}"' in text, metric
    durations = next(w for w in body["widgets"] if w["properties"].get("title") == "Run duration (s)")
    stats = [metric[-1]["stat"] for metric in durations["properties"]["metrics"]]
    assert stats == ["p50", "p90", "p99"]
    cost = next(w for w in body["widgets"] if w["properties"].get("title") == "Estimated cost per day (USD)")
    assert cost["properties"]["metrics"][0][-1]["period"] == 86_400


def test_alarms_watch_failure_rate_timeouts_daily_cost_and_dead_letters_and_notify_the_topic(
    dev: Synthesized,
) -> None:
    alarms = _alarms(dev)
    topic = f"<{_topic(dev)}>"
    # failure rate: failed + timed out over every ending, by metric math on the environment's metrics
    rate = alarms["math"]
    (expression,) = [m for m in rate["Metrics"] if "Expression" in m]
    assert "100 * (FILL(failed, 0) + FILL(timedOut, 0))" in expression["Expression"]
    inputs = {m["Id"]: m["MetricStat"]["Metric"] for m in rate["Metrics"] if "MetricStat" in m}
    assert {i: m["MetricName"] for i, m in inputs.items()} == {
        "completed": "RunsCompleted",
        "failed": "RunsFailed",
        "timedOut": "RunsTimedOut",
        "cancelled": "RunsCancelled",
    }
    assert all(m["Namespace"] == "threadrunner" for m in inputs.values())
    assert all(m["Dimensions"] == [{"Name": "environment", "Value": "dev"}] for m in inputs.values())
    assert rate["Threshold"] == 20
    # timed-out runs, and the estimated spend of a day
    assert alarms["RunsTimedOut"]["Threshold"] == 1
    assert alarms["RunsTimedOut"]["Dimensions"] == [{"Name": "environment", "Value": "dev"}]
    daily = alarms["EstimatedCost"]
    assert daily["Period"] == 86_400 and daily["Statistic"] == "Sum" and daily["Threshold"] == 20
    # every alarm, the cleanup ones too, notifies the topic
    for metric in (
        "math",
        "RunsTimedOut",
        "EstimatedCost",
        "ApproximateNumberOfMessagesVisible",
        "CleanupsGivenUp",
    ):
        assert [render(action) for action in alarms[metric]["AlarmActions"]] == [topic], metric


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use_and_refuses_plain_http(
    dev: Synthesized,
) -> None:
    _, topic = dev.only("AWS::SNS::Topic")
    key_id = render(topic["Properties"]["KmsMasterKeyId"]).strip("<>").removesuffix(".Arn")
    key = dev.template["Resources"][key_id]  # its own key, not the log groups' one
    assert key_id != dev.stack.resolve(dev.stack.log_groups.key.key_arn)["Fn::GetAtt"][0]
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in statements)
    (policy,) = [
        p
        for p in dev.resources("AWS::SNS::TopicPolicy").values()
        if render(p["Properties"]["Topics"][0]) == f"<{_topic(dev)}>"
    ]
    (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_operators_are_a_cognito_group_the_functions_know(dev: Synthesized) -> None:
    _, group = dev.only("AWS::Cognito::UserPoolGroup")
    assert group["Properties"]["GroupName"] == "threadrunner-admins"
    _, api = dev.function(FunctionName.api)
    assert api["Properties"]["Environment"]["Variables"]["THREADRUNNER_ADMIN_GROUP"] == "threadrunner-admins"


def test_budgets_prices_and_thresholds_come_from_the_environments_settings() -> None:
    custom = synthesize_with(
        "staging",
        daily_token_budget=100_000,
        daily_cost_budget_usd=2.5,
        prices={"our-llm": {"input": 0.1, "cached_input": 0.05, "output": 0.2}},
        daily_cost_alarm_usd=7,
        failure_rate_alarm_percent=35,
        alarm_email="ops@example.com",
    )
    _, api = custom.function(FunctionName.api)
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["THREADRUNNER_DAILY_TOKEN_BUDGET"] == "100000"
    assert variables["THREADRUNNER_DAILY_COST_BUDGET_USD"] == "2.5"
    assert json.loads(variables["THREADRUNNER_PRICES"]) == {
        "our-llm": {"input": 0.1, "cached_input": 0.05, "output": 0.2}
    }
    alarms = _alarms(custom)
    assert alarms["EstimatedCost"]["Threshold"] == 7 and alarms["math"]["Threshold"] == 35
    _, subscription = custom.only("AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
