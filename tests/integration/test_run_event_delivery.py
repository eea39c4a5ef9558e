"""Run events from the event log to an outbound webhook receiver, through the deployed handlers over moto:
the runs table's stream records (built as DynamoDB Streams hands them to Lambda) -> fan_out_run_events -> the
SQS delivery queue -> deliver_run_webhook -> a receiver on loopback that verifies every request with the openai
SDK's Standard Webhooks verification (``OpenAI(webhook_secret=...).webhooks.unwrap``)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from openai import InvalidWebhookSignatureError, OpenAI
from threadrunner.models.run_events import RunEventType
from threadrunner.run_event_settings import run_event_settings
from threadrunner.stores.run_events import EVENT_PREFIX, RunEventStore, RunRef

from local.lambdas import LambdaContext
from tests.support.aws import moto_tables
from tests.support.run_event_records import stream_records
from tests.support.webhook_receiver import Received, WebhookReceiver

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SECRET = "whsec_" + "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
RUN = RunRef(run_id="run_01jd3x9q8k7m6n5p4r3s2t1v0w", user_id="alice", thread_id="thr_1")


def handler(folder: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"handler_{folder}", FUNCTIONS / folder / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(folder: str) -> LambdaContext:
    return LambdaContext(folder, f"arn:aws:lambda:us-east-1:123456789012:function:{folder}", 60)


class World:
    def __init__(self, tables: dict[str, Any], queue_url: str, receiver: WebhookReceiver) -> None:
        self.events = RunEventStore(tables["runs"])
        self.runs = tables["runs"]
        # Events are logged only for a run that exists (never into a deleted run's partition).
        self.runs.put_item(Item={"run_id": RUN.run_id, "sk": "run", "user_id": RUN.user_id})
        self.queue_url = queue_url
        self.receiver = receiver
        self.sqs = boto3.client("sqs", region_name="us-east-1")

    def stream(self) -> list[dict[str, Any]]:
        """The stream's records of the run's events (the mapping's filter drops every other item)."""
        items = self.runs.query(
            KeyConditionExpression=Key("run_id").eq(RUN.run_id) & Key("sk").begins_with(EVENT_PREFIX)
        )["Items"]
        return stream_records(items)

    def fan_out(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return handler("fan_out_run_events").lambda_handler({"Records": records}, context("fan_out"))

    def receive(self) -> list[dict[str, Any]]:
        """The queue's visible messages, in the Lambda event's SQS record format."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        )
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
            for m in answer.get("Messages", [])
        ]

    def deliver(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return handler("deliver_run_webhook").lambda_handler({"Records": records}, context("deliver"))

    def visible_now(self, record: dict[str, Any]) -> None:
        """The backoff has passed."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_tables() as tables, WebhookReceiver() as receiver:
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="run-webhooks")["QueueUrl"]
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="hooks/endings", SecretString=json.dumps({"webhook_secret": SECRET})
        )
        subscriptions = [
            {
                "url": f"{receiver.url}/hooks",
                "events": ["run.completed", "run.failed"],
                "secret_name": "hooks/endings",
            }
        ]
        monkeypatch.setenv("AWS_REGION", "us-east-1")  # as Lambda sets both
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("THREADRUNNER_WEBHOOK_QUEUE_URL", queue_url)
        monkeypatch.setenv("THREADRUNNER_WEBHOOK_SUBSCRIPTIONS", json.dumps(subscriptions))
        run_event_settings.cache_clear()
        yield World(tables, queue_url, receiver)
    run_event_settings.cache_clear()


def verified(received: Received) -> Any:
    """What the openai SDK makes of the request: raises unless the Standard Webhooks signature verifies."""
    client = OpenAI(api_key="unused", webhook_secret=SECRET, max_retries=0)
    return client.webhooks.unwrap(received.body, received.headers)


def test_a_subscribed_event_reaches_the_receiver_signed_and_a_retry_keeps_its_id_and_body(
    world: World,
) -> None:
    # Given a run that logged three events, one of them of a subscribed type
    world.events.append(RUN, RunEventType.run_started, key="run.started")
    world.events.append(RUN, RunEventType.tool_call_completed, {"id": "call_1"}, key="tool#call_1")
    world.events.append(RUN, RunEventType.run_completed, {"status": "completed"}, key="run.completed")

    # When the stream hands them to the fan-out
    answer = world.fan_out(world.stream())

    # Then one delivery is queued, for run.completed
    assert answer == {"batchItemFailures": []}
    (message,) = world.receive()
    # And when the receiver first answers 500, the delivery fails and is put back for later
    world.receiver.answers.append(500)
    assert world.deliver([message]) == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    world.visible_now(message)
    (retry,) = world.receive()
    assert (
        retry["messageId"] == message["messageId"] and retry["attributes"]["ApproximateReceiveCount"] == "2"
    )
    # and the next attempt is taken
    assert world.deliver([retry]) == {"batchItemFailures": []}
    assert world.receive() == []

    first, second = world.receiver.wait_for(2)
    # Both attempts verify as Standard Webhooks with the subscription's secret, with one id and one body
    for request in (first, second):
        event = verified(request)
        assert event.id == "evt_run_01jd3x9q8k7m6n5p4r3s2t1v0w_3"
    assert (
        first.headers["Webhook-Id"] == second.headers["Webhook-Id"] == "evt_run_01jd3x9q8k7m6n5p4r3s2t1v0w_3"
    )
    assert first.body == second.body
    body = json.loads(second.body)
    assert body["type"] == "run.completed"
    assert body["data"] == {
        "status": "completed",
        "run_id": RUN.run_id,
        "thread_id": RUN.thread_id,
        "user_id": RUN.user_id,
        "seq": 3,
    }


def test_a_stream_batch_handed_over_again_delivers_under_the_same_ids(world: World) -> None:
    # Given a run's ending fanned out twice (the stream retried the batch after a later record failed)
    world.events.append(RUN, RunEventType.run_failed, {"code": "UpstreamRejected"}, key="run.failed")
    world.fan_out(world.stream())
    world.fan_out(world.stream())

    # When both deliveries go out
    messages = world.receive()
    assert len(messages) == 2
    world.deliver(messages)

    # Then the receiver sees one id twice, which it deduplicates on: never two ids for one event
    received = world.receiver.wait_for(2)
    assert {request.headers["Webhook-Id"] for request in received} == {"evt_run_01jd3x9q8k7m6n5p4r3s2t1v0w_1"}


def test_a_request_signed_with_another_secret_does_not_verify(world: World) -> None:
    world.events.append(RUN, RunEventType.run_completed, key="run.completed")
    world.fan_out(world.stream())
    world.deliver(world.receive())
    (request,) = world.receiver.wait_for(1)

    client = OpenAI(
        api_key="unused", webhook_secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM=", max_retries=0
    )
    with pytest.raises(InvalidWebhookSignatureError):
        client.webhooks.unwrap(request.body, request.headers)
