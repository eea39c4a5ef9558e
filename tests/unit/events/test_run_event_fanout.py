"""The fan-out of run events over fakes: which events go to which webhooks and channels, in what order, and
what a failure holds back (webhook deliveries must happen; live push is best effort)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from threadrunner.models.run_event_delivery import WebhookDelivery, WebhookSubscription
from threadrunner.models.run_events import RunEventType
from threadrunner.run_event_fanout import (
    MAX_LIVE_EVENT_BYTES,
    AppSyncEventsPublisher,
    LivePublishError,
    fan_out,
    run_channel,
)

from tests.support.run_event_records import event_item, stream_records

ALICE = "0f8fad5b-d9cb-469f-a165-70867728950e"
COMPLETIONS = WebhookSubscription(
    url="https://hooks.example.com/a", events=[RunEventType.run_completed], secret_name="hooks/a"
)
TOOLS = WebhookSubscription(
    url="https://hooks.example.com/b",
    events=[RunEventType.tool_call_completed, RunEventType.run_completed],
    secret_name="hooks/b",
)


class FakeQueue:
    def __init__(self, *, fail_calls: Sequence[int] = (), refuse: Sequence[str] = ()) -> None:
        self.enqueued: list[WebhookDelivery] = []
        self.calls = 0
        self._fail_calls = set(fail_calls)
        self._refuse = set(refuse)

    def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        self.calls += 1
        if self.calls in self._fail_calls:
            raise ConnectionError("SQS unreachable")
        refused = [i for i, d in enumerate(deliveries) if d.delivery_id in self._refuse]
        self.enqueued.extend(d for i, d in enumerate(deliveries) if i not in refused)
        return refused


class FakePublisher:
    def __init__(self, *, failing_channels: Sequence[str] = ()) -> None:
        self.published: list[tuple[str, list[dict[str, Any]]]] = []
        self._failing = set(failing_channels)

    def publish(self, channel: str, events: Sequence[str]) -> None:
        if channel in self._failing:
            raise LivePublishError("AppSync Events answered 500")
        self.published.append((channel, [json.loads(event) for event in events]))


def run_items(run_id: str, types: Sequence[str], **kwargs: Any) -> list[dict[str, Any]]:
    return [event_item(run_id, seq, kind, **kwargs) for seq, kind in enumerate(types, start=1)]


def test_each_event_goes_to_its_runs_channel_in_order_at_most_five_a_request() -> None:
    # Given seven events of one run and one of another, in stream order
    items = run_items("run_a", ["run.started"] + ["message.delta"] * 6) + run_items("run_b", ["run.started"])
    publisher = FakePublisher()

    result = fan_out(stream_records(items), subscriptions=[], queue=None, publisher=publisher)

    # Then they are published per channel, in order, five at most per request, and nothing failed
    assert result.failed == [] and result.published == 8
    channel_a, channel_b = run_channel(ALICE, "run_a"), run_channel(ALICE, "run_b")
    assert [(channel, [e["seq"] for e in events]) for channel, events in publisher.published] == [
        (channel_a, [1, 2, 3, 4, 5]),
        (channel_a, [6, 7]),
        (channel_b, [1]),
    ]
    first = publisher.published[0][1][0]
    assert first == {
        "run_id": "run_a",
        "thread_id": "thr_1",
        "seq": 1,
        "type": "run.started",
        "created_at": "2026-12-01T10:00:00+00:00",
        "data": {},
    }


def test_each_subscribed_event_becomes_one_delivery_per_subscription_with_the_events_own_id() -> None:
    items = run_items("run_a", ["run.started", "tool_call.completed", "run.completed"])
    queue = FakeQueue()

    result = fan_out(stream_records(items), subscriptions=[COMPLETIONS, TOOLS], queue=queue, publisher=None)

    assert result.failed == [] and result.enqueued == 3
    assert [(d.delivery_id, d.subscription, d.webhook_id) for d in queue.enqueued] == [
        ("run_a:2:1", 1, "evt_run_a_2"),
        ("run_a:3:0", 0, "evt_run_a_3"),
        ("run_a:3:1", 1, "evt_run_a_3"),
    ]
    # one body per event, whoever receives it: ids and small fields, whose run it is
    body = json.loads(queue.enqueued[1].body)
    assert body == {
        "id": "evt_run_a_3",
        "type": "run.completed",
        "created_at": "2026-12-01T10:00:00+00:00",
        "data": {"run_id": "run_a", "thread_id": "thr_1", "user_id": ALICE, "seq": 3},
    }
    assert queue.enqueued[1].body == queue.enqueued[2].body


def test_a_record_whose_deliveries_were_not_enqueued_fails_with_every_later_one_and_is_not_pushed_live() -> (
    None
):
    # Given twelve completions (twelve deliveries: two SendMessageBatch calls) and SQS failing the second call
    items = [event_item(f"run_{i:02d}", 1, "run.completed") for i in range(12)]
    records = stream_records(items)
    queue, publisher = FakeQueue(fail_calls=[2]), FakePublisher()

    result = fan_out(records, subscriptions=[COMPLETIONS], queue=queue, publisher=publisher)

    # Then the first ten are done (enqueued and pushed), and the rest is reported back, in stream order
    assert result.enqueued == 10
    assert result.failed == [r["dynamodb"]["SequenceNumber"] for r in records[10:]]
    assert [events[0]["run_id"] for _, events in publisher.published] == [f"run_{i:02d}" for i in range(10)]


def test_a_delivery_sqs_refuses_fails_its_record_onwards() -> None:
    items = run_items("run_a", ["run.completed"]) + run_items("run_b", ["run.completed"])
    records = stream_records(items)

    result = fan_out(
        records, subscriptions=[COMPLETIONS], queue=FakeQueue(refuse=["run_b:1:0"]), publisher=FakePublisher()
    )

    assert result.failed == [records[1]["dynamodb"]["SequenceNumber"]]


def test_a_failed_live_publish_is_counted_and_holds_nothing_back() -> None:
    items = run_items("run_a", ["run.completed"]) + run_items("run_b", ["run.completed"])
    queue = FakeQueue()
    publisher = FakePublisher(failing_channels=[str(run_channel(ALICE, "run_a"))])

    result = fan_out(stream_records(items), subscriptions=[COMPLETIONS], queue=queue, publisher=publisher)

    # the webhooks of both go, the live event of run_b goes, run_a's live event is dropped: no retry
    assert result.failed == []
    assert [d.delivery_id for d in queue.enqueued] == ["run_a:1:0", "run_b:1:0"]
    assert [channel for channel, _ in publisher.published] == [run_channel(ALICE, "run_b")]
    assert result.live_dropped == 1 and result.published == 1


def test_a_user_id_no_channel_can_carry_gets_webhooks_but_no_live_push() -> None:
    items = run_items("run_a", ["run.completed"], user_id="auth0|123")
    queue, publisher = FakeQueue(), FakePublisher()

    result = fan_out(stream_records(items), subscriptions=[COMPLETIONS], queue=queue, publisher=publisher)

    assert result.failed == [] and len(queue.enqueued) == 1
    assert publisher.published == [] and result.live_dropped == 1


@pytest.mark.parametrize(
    ("user_id", "run_id", "channel"),
    [
        (ALICE, "run_01jd3x9q8k7m6n5p4r3s2t1v0w", f"/runs/{ALICE}/run-01jd3x9q8k7m6n5p4r3s2t1v0w"),
        ("auth0|123", "run_1", None),  # never rewritten: "auth0-123" could be someone else
        ("a_b", "run_1", None),
        ("x" * 51, "run_1", None),
    ],
)
def test_run_channels(user_id: str, run_id: str, channel: str | None) -> None:
    assert run_channel(user_id, run_id) == channel


def test_a_record_that_is_no_run_event_fails_with_every_later_one() -> None:
    items = run_items("run_a", ["run.started", "run.completed"])
    records = stream_records(items)
    del records[0]["dynamodb"]["NewImage"]["user_id"]
    queue = FakeQueue()

    result = fan_out(records, subscriptions=[COMPLETIONS], queue=queue, publisher=FakePublisher())

    assert result.failed == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert queue.enqueued == []


def test_an_event_too_large_for_appsync_goes_live_as_a_stub_the_client_reads_from_the_log() -> None:
    items = run_items("run_a", ["tool_call.completed"])
    items[0]["data"] = {"note": "x" * MAX_LIVE_EVENT_BYTES}
    publisher = FakePublisher()

    fan_out(stream_records(items), subscriptions=[], queue=None, publisher=publisher)

    ((_, [event]),) = publisher.published
    assert event["truncated"] is True and "data" not in event and event["seq"] == 1


def test_the_publisher_signs_for_appsync_and_sends_the_channel_and_event_strings() -> None:
    # Given the publisher with fixed credentials and a fake transport
    sent: list[Any] = []

    def send(prepared: Any) -> Any:
        sent.append(prepared)
        return SimpleNamespace(
            status_code=200, content=b'{"successful":[{"identifier":"1","index":0}],"failed":[]}'
        )

    credentials = SimpleNamespace(access_key="AKIDEXAMPLE", secret_key="secret", token="session-token")
    publisher = AppSyncEventsPublisher(
        "abc.appsync-api.eu-west-1.amazonaws.com", "eu-west-1", credentials=lambda: credentials, send=send
    )
    # When it publishes two events
    publisher.publish("/runs/u/run-1", ['{"seq":1}', '{"seq":2}'])
    # Then it POSTs them to /event, signed with SigV4 for AppSync in the region, with the session token
    (request,) = sent
    assert request.method == "POST" and request.url == "https://abc.appsync-api.eu-west-1.amazonaws.com/event"
    assert json.loads(request.body) == {"channel": "/runs/u/run-1", "events": ['{"seq":1}', '{"seq":2}']}
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/appsync/aws4_request" in authorization
    assert request.headers["X-Amz-Security-Token"] == "session-token"


@pytest.mark.parametrize(
    ("status", "content"),
    [(401, b'{"errors":[{"errorType":"UnauthorizedException"}]}'), (200, b'{"failed":[{"code":400}]}')],
)
def test_the_publisher_raises_when_appsync_takes_not_every_event(status: int, content: bytes) -> None:
    publisher = AppSyncEventsPublisher(
        "abc.appsync-api.eu-west-1.amazonaws.com",
        "eu-west-1",
        credentials=lambda: SimpleNamespace(access_key="a", secret_key="b", token=None),
        send=lambda _: SimpleNamespace(status_code=status, content=content),
    )
    with pytest.raises(LivePublishError):
        publisher.publish("/runs/u/run-1", ["{}"])


def test_large_events_of_one_run_go_in_requests_of_at_most_one_events_size_limit() -> None:
    items = run_items("run_a", ["tool_call.completed"] * 3)
    for item in items:
        item["data"] = {"note": "x" * (MAX_LIVE_EVENT_BYTES // 2)}
    publisher = FakePublisher()

    result = fan_out(stream_records(items), subscriptions=[], queue=None, publisher=publisher)

    assert result.published == 3
    assert [[event["seq"] for event in events] for _, events in publisher.published] == [[1], [2], [3]]
