"""Webhook completion: the OpenAI webhook resumes the "Wait for model" callback task (moto's Step Functions
interpreter runs the webhook mode's real state, infra/workflows, with the real step code)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from threadrunner.openai_webhooks import handle_http, signed_headers
from threadrunner.stores.response_waits import ResponseWaitStore, wait_key
from threadrunner.workflow.completion import AwaitModelInput, await_model

from infra.workflows import run_workflow_definition

REGION = "us-east-1"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
AWAIT_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:await_model"


def _definition() -> str:
    """The real webhook-mode "Wait for model" (infra/workflows), followed by a stand-in for Check run."""
    workflow = json.loads(run_workflow_definition("webhook").replace("${AwaitModelFunctionArn}", AWAIT_ARN))
    return json.dumps(
        {
            "StartAt": "Wait for model",
            "States": {
                "Wait for model": workflow["States"]["Wait for model"],
                "Check run": {"Type": "Pass", "End": True},
            },
        }
    )


class World:
    def __init__(self) -> None:
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        self.table = dynamodb.create_table(
            TableName="runs",
            KeySchema=[
                {"AttributeName": "run_id", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "run_id", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.waits = ResponseWaitStore(self.table)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.runs = SimpleNamespace(
            get=lambda run_id: SimpleNamespace(response_ids=["resp_1"], engine="responses", stream=False)
        )
        self.awaited: list[dict[str, Any]] = []

    def invoke(
        self, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        step = AwaitModelInput.model_validate(json.loads(body))
        output = await_model(step, runs=self.runs, waits=self.waits, stepfunctions=self.sfn)
        self.awaited.append(output.model_dump())
        return output.model_dump_json().encode()

    def webhook(
        self,
        event_type: str = "response.completed",
        response_id: str = "resp_1",
        *,
        age: int = 0,
        secret: str = SECRET,
        webhook_id: str = "wh_1",
    ) -> dict[str, Any]:
        body = json.dumps(
            {
                "id": "evt_1",
                "object": "event",
                "type": event_type,
                "created_at": int(time.time()),
                "data": {"id": response_id},
            }
        )
        headers = signed_headers(secret, webhook_id, int(time.time()) - age, body)
        return handle_http(
            {"body": body, "headers": headers, "isBase64Encoded": False},
            secret=lambda refresh: SECRET,
            waits=self.waits,
            stepfunctions=self.sfn,
        )

    def start(self, fallback_seconds: int = 60) -> str:
        name = f"m{len(self.awaited)}{time.monotonic_ns()}"
        arn = self.sfn.create_state_machine(
            name=name, definition=_definition(), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        state = {"run_id": "run_1", "settings": {"webhook_fallback_seconds": fallback_seconds}}
        return self.sfn.start_execution(stateMachineArn=arn, input=json.dumps(state))["executionArn"]

    def wait_until(self, predicate: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def finished(self, execution_arn: str, timeout: float = 10) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def done() -> bool:
            result.update(self.sfn.describe_execution(executionArn=execution_arn))
            return result["status"] != "RUNNING"

        self.wait_until(done, timeout)
        return result


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config=MOTO_CONFIG):
        w = World()
        with mock.patch.object(LambdaSimpleBackend, "invoke", w.invoke):
            yield w


def _items(world: World) -> list[dict[str, Any]]:
    return world.table.scan()["Items"]


def test_a_signed_webhook_resumes_the_waiting_task_with_ids_and_status_only(world: World) -> None:
    execution = world.start()
    world.wait_until(lambda: world.awaited)
    answer = world.webhook()
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["resumed"] is True
    output = json.loads(world.finished(execution)["output"])
    assert output["completion"] == {"response_id": "resp_1", "status": "completed"}


@pytest.mark.parametrize("case", ["forged", "stale", "unsigned"])
def test_bad_signatures_and_stale_timestamps_answer_401_without_touching_state(
    world: World, case: str
) -> None:
    if case == "forged":
        answer = world.webhook(
            secret="whsec_" + base64.b64encode(b"not the secret, not at all!!!!!").decode()
        )
    elif case == "stale":
        answer = world.webhook(age=301)
    else:
        answer = handle_http(
            {"body": "{}", "headers": {}},
            secret=lambda refresh: SECRET,
            waits=world.waits,
            stepfunctions=world.sfn,
        )
    assert answer["statusCode"] == 401
    assert _items(world) == []


def test_a_webhook_before_the_token_is_recorded_is_not_lost(world: World) -> None:
    assert world.webhook()["statusCode"] == 200  # nobody waits yet: only the marker is stored
    execution = world.start()
    output = json.loads(world.finished(execution)["output"])
    assert output["completion"] == {"response_id": "resp_1", "status": "completed"}
    assert world.awaited == [{"response_id": "resp_1", "resumed": True}]


def test_duplicate_and_late_webhooks_are_no_ops(world: World) -> None:
    execution = world.start()
    world.wait_until(lambda: world.awaited)
    assert json.loads(world.webhook()["body"])["resumed"] is True
    world.finished(execution)
    duplicate = world.webhook(webhook_id="wh_1")
    late_other_event = world.webhook("response.failed", webhook_id="wh_2")
    for answer in (duplicate, late_other_event):
        assert answer["statusCode"] == 200
        assert json.loads(answer["body"]) == {
            "received": True,
            "resumed": False,
            "duplicate": True,
            "ignored": False,
        }
    assert world.waits.get("resp_1").status == "completed"  # the first event wins


def test_a_spent_token_is_treated_as_done(world: World) -> None:
    world.waits.record_token("resp_9", "a-token-step-functions-no-longer-knows", "run_9")
    answer = world.webhook(response_id="resp_9")
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["resumed"] is False


def test_an_unknown_response_id_answers_2xx_without_effect_on_any_run(world: World) -> None:
    answer = world.webhook(response_id="resp_nobody")
    assert answer["statusCode"] == 200
    item = world.table.get_item(Key=wait_key("resp_nobody"))["Item"]
    assert "task_token" not in item and item["expires_at"] > time.time()  # a TTL'd marker, nothing else


def test_other_event_types_are_acknowledged_and_ignored(world: World) -> None:
    answer = world.webhook("batch.completed")
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["ignored"] is True
    assert _items(world) == []


def test_a_missing_webhook_falls_back_to_a_poll_after_the_fallback_seconds(world: World) -> None:
    # Given a run waiting for a webhook that never comes
    started = time.monotonic()
    execution = world.start(fallback_seconds=1)
    # Then after webhook_fallback_seconds the wait ends and Check run polls (the run goes on)
    result = world.finished(execution)
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["completion"]["Error"] == "States.Timeout"
    assert time.monotonic() - started >= 1


def test_a_run_on_an_engine_without_webhooks_is_polled_at_once(world: World) -> None:
    # Given a run on the chat engine (it answers inline; the assistants engine sends no webhooks)
    world.runs = SimpleNamespace(
        get=lambda run_id: SimpleNamespace(response_ids=["resp_1"], engine="chat", stream=False)
    )
    # When it reaches Wait for model, Then Await model resumes it at once, for Check run to poll
    execution = world.start()
    output = json.loads(world.finished(execution)["output"])
    assert output["completion"] == {"response_id": "resp_1", "status": "poll"}
    assert _items(world) == []  # no token kept for a webhook that will not come


def test_a_streamed_run_is_resumed_at_once_for_check_run_to_relay(world: World) -> None:
    # Given a run on the responses engine created with "stream": true
    world.runs = SimpleNamespace(
        get=lambda run_id: SimpleNamespace(response_ids=["resp_1"], engine="responses", stream=True)
    )
    # When it reaches Wait for model, Then it does not sleep until the webhook: Check run relays its words
    execution = world.start()
    output = json.loads(world.finished(execution)["output"])
    assert output["completion"] == {"response_id": "resp_1", "status": "poll"}
    assert _items(world) == []
