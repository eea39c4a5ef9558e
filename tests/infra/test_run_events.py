"""Run events after they are logged, in the template: the runs table's stream and its filtered mapping to
the fan-out, the AppSync Events API (who connects, subscribes and publishes), the outbound webhook delivery
queue, least-privilege IAM of both functions, and the dead letters with their alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from threadrunner.models.run_events import RunEventType

from infra.config import ConfigError, load_environment
from infra.constants import ALL_FUNCTIONS, FunctionName, OutputName
from infra.constructs.outbound_webhooks import MAX_ATTEMPTS
from tests.infra.synth import (
    CDK_CONTEXT,
    Synthesized,
    actions,
    build_app,
    render,
    resources_of,
    synthesize_with,
)
from tests.infra.test_nag import findings

SUBSCRIPTIONS = [
    {
        "url": "https://hooks.example.com/runs",
        "events": ["run.completed", "run.failed"],
        "secret_name": "threadrunner/staging/hooks-endings",
    },
    {"url": "https://audit.example.com/in", "events": ["tool_call.completed"], "secret_name": "audit/hook"},
]


@pytest.fixture(scope="module")
def with_webhooks() -> Synthesized:
    return synthesize_with("staging", webhooks=SUBSCRIPTIONS)


@pytest.fixture(scope="module")
def with_issuer() -> Synthesized:
    return synthesize_with(
        "dev", jwt={"issuer": "https://id.example.com/", "audience": ["threadrunner-api", "spa.v2"]}
    )


def logical_id(synthesized: Synthesized, construct: Any) -> str:
    return str(synthesized.stack.resolve(construct.node.default_child.logical_id))


def grants(synthesized: Synthesized, name: FunctionName) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for statement in synthesized.role_statements(name):
        for action in actions(statement):
            allowed.setdefault(action, set()).update(str(render(r)) for r in resources_of(statement))
    return allowed


def mapping_of(synthesized: Synthesized, name: FunctionName) -> dict[str, Any]:
    function_id, _ = synthesized.function(name)
    (found,) = [
        value["Properties"]
        for value in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if value["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return dict(found)


def test_new_run_events_and_nothing_else_reach_the_fan_out(dev: Synthesized) -> None:
    runs = logical_id(dev, dev.stack.storage.runs_table)
    table = dev.template["Resources"][runs]["Properties"]
    mapping = mapping_of(dev, FunctionName.fan_out_run_events)

    # The runs table streams new images (the whole event), the fan-out reads that stream
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert render(mapping["EventSourceArn"]) == f"<{runs}.StreamArn>"
    # only INSERTs of event items: no run record, ledger entry, eventkey# marker, update or TTL removal
    (pattern,) = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "event#"}]}}}}
    # failed records are reported one by one, a crashing batch is halved, and what never goes is dead-lettered
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 < mapping["MaximumRetryAttempts"] <= 10
    dead_letters = logical_id(dev, dev.stack.run_event_fanout.dead_letters)
    assert render(mapping["DestinationConfig"]["OnFailure"]["Destination"]) == f"<{dead_letters}.Arn>"


def test_the_live_api_takes_the_user_pool_for_subscribers_and_iam_for_publishers(dev: Synthesized) -> None:
    _, api = dev.only("AWS::AppSync::Api")
    config = api["Properties"]["EventConfig"]
    pool, _ = dev.only("AWS::Cognito::UserPool")
    client, _ = dev.only("AWS::Cognito::UserPoolClient")

    cognito, iam_provider = config["AuthProviders"]
    assert cognito["AuthType"] == "AMAZON_COGNITO_USER_POOLS"
    assert render(cognito["CognitoConfig"]["UserPoolId"]) == f"<{pool}>"
    # the app client the HTTP API's authorizer takes, and no other
    assert render(cognito["CognitoConfig"]["AppIdClientRegex"]) == f"^(<{client}>)$"
    assert iam_provider == {"AuthType": "AWS_IAM"}
    assert (
        config["ConnectionAuthModes"]
        == config["DefaultSubscribeAuthModes"]
        == [{"AuthType": "AMAZON_COGNITO_USER_POOLS"}]
    )
    assert config["DefaultPublishAuthModes"] == [{"AuthType": "AWS_IAM"}]
    (namespace,) = dev.resources("AWS::AppSync::ChannelNamespace").values()
    assert namespace["Properties"]["Name"] == "runs"
    assert namespace["Properties"]["PublishAuthModes"] == [{"AuthType": "AWS_IAM"}]
    assert namespace["Properties"]["SubscribeAuthModes"] == [{"AuthType": "AMAZON_COGNITO_USER_POOLS"}]
    assert "export function onSubscribe" in namespace["Properties"]["CodeHandlers"]


def test_with_an_issuer_the_live_api_takes_the_same_issuer_and_audiences_as_the_http_api(
    with_issuer: Synthesized,
) -> None:
    _, api = with_issuer.only("AWS::AppSync::Api")
    _, authorizer = with_issuer.only("AWS::ApiGatewayV2::Authorizer")
    jwt = authorizer["Properties"]["JwtConfiguration"]
    config = api["Properties"]["EventConfig"]

    (oidc,) = [p for p in config["AuthProviders"] if p["AuthType"] == "OPENID_CONNECT"]
    assert oidc["OpenIDConnectConfig"]["Issuer"] == jwt["Issuer"] == "https://id.example.com"
    # clientId is a regular expression over aud: exactly the authorizer's audiences
    pattern = oidc["OpenIDConnectConfig"]["ClientId"]
    assert pattern == r"^(threadrunner\-api|spa\.v2)$"
    assert jwt["Audience"] == ["threadrunner-api", "spa.v2"]
    assert not with_issuer.resources("AWS::Cognito::UserPool")
    assert config["DefaultSubscribeAuthModes"] == [{"AuthType": "OPENID_CONNECT"}]
    assert config["DefaultPublishAuthModes"] == [{"AuthType": "AWS_IAM"}]


def test_clients_find_the_live_endpoints_in_the_outputs(dev: Synthesized) -> None:
    outputs = dev.template["Outputs"]
    api_id, _ = dev.only("AWS::AppSync::Api")
    assert (
        render(outputs[OutputName.live_events_http_endpoint.value]["Value"])
        == f"https://<{api_id}.Dns.Http>/event"
    )
    assert (
        render(outputs[OutputName.live_events_realtime_endpoint.value]["Value"])
        == f"wss://<{api_id}.Dns.Realtime>/event/realtime"
    )


def test_only_the_fan_out_publishes_and_only_to_the_runs_namespace_of_this_api(dev: Synthesized) -> None:
    api_id, _ = dev.only("AWS::AppSync::Api")
    publishers = {
        name for name in ALL_FUNCTIONS if any(a.startswith("appsync:") for a in grants_any(dev, name))
    }
    assert publishers == {FunctionName.fan_out_run_events}
    allowed = grants(dev, FunctionName.fan_out_run_events)
    assert [a for a in allowed if a.startswith("appsync:")] == ["appsync:EventPublish"]
    assert allowed["appsync:EventPublish"] == {
        f"arn:<AWS::Partition>:appsync:<AWS::Region>:<AWS::AccountId>:apis/<{api_id}.ApiId>/channelNamespace/runs"
    }


def grants_any(synthesized: Synthesized, name: Any) -> set[str]:
    return {action for statement in synthesized.role_statements(name) for action in actions(statement)}


def test_the_fan_out_sends_to_the_delivery_queue_and_reads_only_the_runs_stream(
    with_webhooks: Synthesized,
) -> None:
    queue = logical_id(with_webhooks, with_webhooks.stack.outbound_webhooks.queue)
    dead_letters = logical_id(with_webhooks, with_webhooks.stack.run_event_fanout.dead_letters)
    runs = logical_id(with_webhooks, with_webhooks.stack.storage.runs_table)

    allowed = grants(with_webhooks, FunctionName.fan_out_run_events)

    # its stream (Lambda reads it with the function's role), the delivery queue, its own dead letters
    assert allowed["dynamodb:GetRecords"] == {f"<{runs}.StreamArn>"}
    assert allowed["sqs:SendMessage"] == {f"<{queue}.Arn>", f"<{dead_letters}.Arn>"}
    # no table item, no secret, no delivery: the fan-out hands on what the stream carries
    assert not [a for a in allowed if a.startswith(("secretsmanager:", "s3:", "states:", "lambda:"))]
    assert not {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"} & set(
        allowed
    )


def test_delivery_consumes_its_queue_and_reads_exactly_the_subscriptions_secrets(
    with_webhooks: Synthesized,
) -> None:
    queue = logical_id(with_webhooks, with_webhooks.stack.outbound_webhooks.queue)

    allowed = grants(with_webhooks, FunctionName.deliver_run_webhook)

    assert allowed["sqs:ReceiveMessage"] == allowed["sqs:ChangeMessageVisibility"] == {f"<{queue}.Arn>"}
    assert allowed["secretsmanager:GetSecretValue"] == {
        f"arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{s['secret_name']}-??????"
        for s in SUBSCRIPTIONS
    }
    assert [a for a in allowed if a.startswith("secretsmanager:")] == ["secretsmanager:GetSecretValue"]
    assert not [a for a in allowed if a.startswith(("dynamodb:", "s3:", "states:", "appsync:", "lambda:"))]


def test_without_subscriptions_delivery_reads_no_secret(dev: Synthesized) -> None:
    assert not [a for a in grants(dev, FunctionName.deliver_run_webhook) if a.startswith("secretsmanager:")]


def test_both_functions_know_the_subscriptions_as_cdk_json_lists_them(with_webhooks: Synthesized) -> None:
    queue = logical_id(with_webhooks, with_webhooks.stack.outbound_webhooks.queue)
    for name in (FunctionName.fan_out_run_events, FunctionName.deliver_run_webhook):
        variables = with_webhooks.function(name)[1]["Properties"]["Environment"]["Variables"]
        assert json.loads(variables["THREADRUNNER_WEBHOOK_SUBSCRIPTIONS"]) == SUBSCRIPTIONS
        assert render(variables["THREADRUNNER_WEBHOOK_QUEUE_URL"]) == f"<{queue}>"
    fan_out = with_webhooks.function(FunctionName.fan_out_run_events)[1]["Properties"]["Environment"][
        "Variables"
    ]
    api_id, _ = with_webhooks.only("AWS::AppSync::Api")
    assert render(fan_out["THREADRUNNER_LIVE_EVENTS_HTTP_DOMAIN"]) == f"<{api_id}.Dns.Http>"


def test_deliveries_are_retried_then_dead_lettered_and_every_dead_letter_queue_raises_an_alarm(
    dev: Synthesized,
) -> None:
    queue_id = logical_id(dev, dev.stack.outbound_webhooks.queue)
    queue = dev.template["Resources"][queue_id]["Properties"]
    delivery_dead_letters = logical_id(dev, dev.stack.outbound_webhooks.dead_letters)
    fan_out_dead_letters = logical_id(dev, dev.stack.run_event_fanout.dead_letters)
    mapping = mapping_of(dev, FunctionName.deliver_run_webhook)
    function = dev.function(FunctionName.deliver_run_webhook)[1]["Properties"]

    assert render(mapping["EventSourceArn"]) == f"<{queue_id}.Arn>"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert render(queue["RedrivePolicy"]["deadLetterTargetArn"]) == f"<{delivery_dead_letters}.Arn>"
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_ATTEMPTS
    # a batch's attempts end well within a visibility timeout (AWS: six times the function's timeout)
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True
    topic = dev.stack.resolve(dev.stack.monitoring.topic.topic_arn)
    for dead_letters in (delivery_dead_letters, fan_out_dead_letters):
        (alarm,) = [
            a["Properties"]
            for a in dev.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters, "QueueName"]}}]
        ]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
        assert alarm["AlarmActions"] == [topic]


VALID = CDK_CONTEXT["environments"]["dev"]


def load_dev_with(**changes: Any) -> Any:
    return load_environment({"dev": {**VALID, **changes}}, "dev")


def test_webhooks_default_to_none() -> None:
    settings = {key: value for key, value in VALID.items() if key != "webhooks"}
    assert load_environment({"dev": settings}, "dev").webhooks == []


@pytest.mark.parametrize(
    ("subscription", "named"),
    [
        ({"url": "http://hooks.example.com/in"}, r"environments\.dev\.webhooks\.0\.url: .*https://"),
        ({"url": "https://user:pw@hooks.example.com/in"}, r"environments\.dev\.webhooks\.0\.url"),
        ({"url": "ftp://hooks.example.com/in"}, r"environments\.dev\.webhooks\.0\.url"),
        ({"events": ["run.exploded"]}, r"environments\.dev\.webhooks\.0\.events\.0: .*'run\.completed'"),
        ({"events": []}, r"environments\.dev\.webhooks\.0\.events"),
        ({"events": ["message.delta"]}, r"environments\.dev\.webhooks\.0\.events: .*live push only"),
        ({"secret_name": None}, r"environments\.dev\.webhooks\.0\.secret_name"),
        ({"headers": {"x": "y"}}, r"environments\.dev\.webhooks\.0\.headers"),
    ],
)
def test_a_bad_subscription_fails_naming_its_key(subscription: dict[str, Any], named: str) -> None:
    valid = {"url": "https://hooks.example.com/in", "events": ["run.completed"], "secret_name": "hooks/a"}
    entry = {key: value for key, value in {**valid, **subscription}.items() if value is not None}
    with pytest.raises(ConfigError, match=named):
        load_dev_with(webhooks=[entry])


def test_a_subscription_may_list_every_event_type_but_the_answers_chunks() -> None:
    types = [kind.value for kind in RunEventType if kind is not RunEventType.message_delta]
    (subscription,) = load_dev_with(
        webhooks=[{"url": "https://hooks.example.com/in", "events": types, "secret_name": "hooks/a"}]
    ).webhooks
    assert [kind.value for kind in subscription.events] == types


def test_an_environment_with_webhooks_and_its_own_issuer_is_clean_under_cdk_nag() -> None:
    app, _ = build_app(
        "staging",
        webhooks=SUBSCRIPTIONS,
        jwt={"issuer": "https://id.example.com/", "audience": ["threadrunner-api"]},
    )

    assert findings(app) == []
