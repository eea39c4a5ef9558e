"""Outbound run webhooks over fakes: the signed request, what a retry keeps (id, body) and changes (timestamp,
signature), the backoff, and what is dropped or retried."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from threadrunner.models.run_event_delivery import StreamedRunEvent, WebhookSubscription
from threadrunner.models.run_events import RunEventType
from threadrunner.outbound_webhooks import (
    RETRY_MAX_SECONDS,
    deliver_messages,
    deliveries_for,
    retry_delay_seconds,
)
from threadrunner.standard_webhooks import signature

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
SUBSCRIPTION = WebhookSubscription(
    url="https://hooks.example.com/runs", events=[RunEventType.run_completed], secret_name="hooks/a"
)
EVENT = StreamedRunEvent(
    run_id="run_a",
    user_id="alice",
    thread_id="thr_1",
    seq=7,
    type="run.completed",
    created_at="2026-12-01T10:00:00+00:00",  # type: ignore[arg-type]
    data={"status": "completed"},
)


class FakeReceiver:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, bytes, dict[str, str], float]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        self.requests.append((url, body, dict(headers), timeout))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


def sqs_record(body: str, *, message_id: str = "m-1", receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}-{receive_count}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def deliver(
    records: list[dict[str, Any]],
    receiver: FakeReceiver,
    *,
    subscriptions: list[WebhookSubscription] | None = None,
    clock: float = 1_800_000_000.0,
    secret_for: Any = None,
) -> tuple[list[str], list[tuple[str, int]]]:
    delays: list[tuple[str, int]] = []
    failed = deliver_messages(
        records,
        subscriptions=[SUBSCRIPTION] if subscriptions is None else subscriptions,
        secret_for=secret_for or (lambda name: SECRET),
        send=receiver,
        delay=lambda handle, seconds: delays.append((handle, seconds)),
        timeout=8.0,
        now=lambda: clock,
    )
    return failed, delays


def test_a_delivery_is_a_standard_webhooks_request_for_the_subscriptions_url() -> None:
    (delivery,) = deliveries_for(EVENT, [SUBSCRIPTION])
    receiver = FakeReceiver(204)

    failed, _ = deliver([sqs_record(delivery.model_dump_json())], receiver, clock=1_800_000_000.9)

    assert failed == []
    ((url, body, headers, timeout),) = receiver.requests
    assert url == "https://hooks.example.com/runs" and timeout == 8.0
    assert headers["webhook-id"] == "evt_run_a_7"
    assert headers["webhook-timestamp"] == "1800000000"
    assert headers["webhook-signature"] == signature(SECRET, "evt_run_a_7", 1_800_000_000, body.decode())
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["data"] == {
        "status": "completed",
        "run_id": "run_a",
        "thread_id": "thr_1",
        "user_id": "alice",
        "seq": 7,
    }


def test_a_failed_attempt_is_delayed_by_a_growing_backoff_and_its_retry_keeps_id_and_body() -> None:
    (delivery,) = deliveries_for(EVENT, [SUBSCRIPTION])
    receiver = FakeReceiver(500, TimeoutError("read timed out"), 200)

    first, delays_1 = deliver([sqs_record(delivery.model_dump_json(), receive_count=1)], receiver, clock=1000)
    second, delays_2 = deliver(
        [sqs_record(delivery.model_dump_json(), receive_count=2)], receiver, clock=1100
    )
    third, _ = deliver([sqs_record(delivery.model_dump_json(), receive_count=3)], receiver, clock=1600)

    assert first == second == ["m-1"] and third == []
    assert delays_1 == [("handle-m-1-1", 30)] and delays_2 == [("handle-m-1-2", 120)]
    ids = {request[2]["webhook-id"] for request in receiver.requests}
    bodies = {request[1] for request in receiver.requests}
    assert ids == {"evt_run_a_7"} and len(bodies) == 1
    # a fresh timestamp, and so a fresh signature, per attempt (receivers refuse stale ones)
    assert [request[2]["webhook-timestamp"] for request in receiver.requests] == ["1000", "1100", "1600"]
    assert len({request[2]["webhook-signature"] for request in receiver.requests}) == 3


def test_the_backoff_grows_and_stops_growing_at_its_cap() -> None:
    delays = [retry_delay_seconds(count) for count in range(1, 12)]
    assert delays == sorted(delays) and delays[0] == 30 and delays[-1] == RETRY_MAX_SECONDS


@pytest.mark.parametrize(
    "subscriptions",
    [
        [],  # removed since the event was enqueued
        [SUBSCRIPTION.model_copy(update={"url": "https://elsewhere.example.com/"})],  # re-pointed
    ],
)
def test_a_delivery_for_a_subscription_that_changed_is_dropped_not_retried(
    subscriptions: list[WebhookSubscription],
) -> None:
    (delivery,) = deliveries_for(EVENT, [SUBSCRIPTION])
    receiver = FakeReceiver()

    failed, delays = deliver([sqs_record(delivery.model_dump_json())], receiver, subscriptions=subscriptions)

    assert failed == [] and delays == [] and receiver.requests == []


def test_an_unreadable_secret_or_a_garbled_message_is_retried_and_nothing_is_sent() -> None:
    (delivery,) = deliveries_for(EVENT, [SUBSCRIPTION])
    receiver = FakeReceiver()

    def no_secret(name: str) -> str:
        raise ValueError(f"the secret {name} holds no webhook_secret")

    failed, delays = deliver(
        [sqs_record(delivery.model_dump_json(), message_id="m-1"), sqs_record("{not json", message_id="m-2")],
        receiver,
        secret_for=no_secret,
    )

    assert failed == ["m-1", "m-2"] and receiver.requests == []
    assert [handle for handle, _ in delays] == ["handle-m-1-1"]


def test_only_subscribed_types_make_deliveries() -> None:
    started = EVENT.model_copy(update={"type": "run.started"})
    assert deliveries_for(started, [SUBSCRIPTION]) == []
