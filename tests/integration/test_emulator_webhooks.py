"""The emulator's webhooks through the real SDK: the endpoints API parsed into the SDK's types, and signed
deliveries, verified by a receiver on loopback with ``OpenAI(webhook_secret=...).webhooks.unwrap`` and
checked against the OpenAPI document's ``webhooks`` schemas, under every delivery knob.

Most tests use an emulator in time-based mode (each background response ends MODEL_SECONDS after its
creation, polled or not); every exchange with it is checked against the contract, as the ``emulator``
fixture does.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.webhooks import (
    DeletedWebhookEndpoint,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)

from local.emulator import EmulatorServer, Plan
from tests.support.openai_contract import validate_exchange
from tests.support.webhook_contract import webhook_event_problems
from tests.support.webhook_receiver import Received, WebhookReceiver

MODEL_SECONDS = 0.3
RESPONSE_EVENT_TYPES: list[Any] = [
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
]


@pytest.fixture(scope="module")
def timed_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(model_seconds=MODEL_SECONDS) as server:
        yield server


@pytest.fixture
def timed(timed_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The time-based emulator, fresh; afterwards its exchanges must honour the contract."""
    timed_server.reset()
    yield timed_server
    problems = list(timed_server.internal_errors)
    for exchange in timed_server.exchanges:
        try:
            validate_exchange(exchange)
        except AssertionError as mismatch:
            problems.append(str(mismatch))
    if problems:
        pytest.fail("the emulator exchanges broke the contract:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def client(timed: EmulatorServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=timed.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def receiver(receiver_server: WebhookReceiver) -> WebhookReceiver:
    receiver_server.clear()
    return receiver_server


def subscribe(client: OpenAI, receiver: WebhookReceiver, **overrides: Any) -> WebhookEndpointWithSecret:
    return client.webhooks.create(
        name=overrides.get("name", "threadrunner-test"),
        url=overrides.get("url", receiver.hook_url),
        event_types=overrides.get("event_types", RESPONSE_EVENT_TYPES),
    )


def background(client: OpenAI) -> str:
    return client.responses.create(model="gpt-4.1-mini", input="Hello", background=True).id


def unwrap(received: Received, secret: str) -> Any:
    """The event, as a receiver verifies it with the SDK; its payload must match the document too."""
    event = OpenAI(api_key="unused", webhook_secret=secret).webhooks.unwrap(received.body, received.headers)
    assert webhook_event_problems(json.loads(received.body)) == []
    return event


def test_endpoints_are_created_read_updated_listed_and_deleted_as_the_sdk_expects(
    client: OpenAI, receiver: WebhookReceiver
) -> None:
    # Given an endpoint created through the SDK
    created = subscribe(client, receiver, name="first")
    assert isinstance(created, WebhookEndpointWithSecret)
    assert created.signing_secret.startswith("whsec_")
    assert created.event_types == RESPONSE_EVENT_TYPES

    # When it is read and its URL changed
    read = client.webhooks.retrieve(created.id)
    updated = client.webhooks.update(created.id, url=receiver.hook_url + "?v=2")

    # Then it reads back as created, without its secret, and the update shows
    assert isinstance(read, WebhookEndpoint)
    assert read.model_dump() == created.model_dump(exclude={"signing_secret"})
    assert "signing_secret" not in read.model_dump()
    assert updated.url == receiver.hook_url + "?v=2"
    assert (updated.name, updated.event_types) == ("first", RESPONSE_EVENT_TYPES)

    # And the list pages through every endpoint, newest first
    others = [subscribe(client, receiver, name=f"other-{index}").id for index in range(3)]
    first_page = client.webhooks.list(limit=2)
    assert [endpoint.id for endpoint in first_page.data] == others[::-1][:2]
    assert first_page.has_more
    assert [endpoint.id for endpoint in client.webhooks.list(limit=2)] == [*others[::-1], created.id]

    # And a deleted endpoint is gone
    deleted = client.webhooks.delete(created.id)
    assert isinstance(deleted, DeletedWebhookEndpoint)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(created.id)
    assert created.id not in [endpoint.id for endpoint in client.webhooks.list()]


def test_unknown_event_types_and_urls_are_refused(client: OpenAI, receiver: WebhookReceiver) -> None:
    # When endpoints are created with an event type or a URL the API does not take
    with pytest.raises(openai.BadRequestError) as unknown_type:
        subscribe(client, receiver, event_types=["response.exploded"])
    with pytest.raises(openai.BadRequestError) as not_a_url:
        subscribe(client, receiver, url="ftp://example.com/hook")

    # Then each 400 names the parameter
    assert unknown_type.value.param == "event_types"
    assert not_a_url.value.param == "url"


def test_a_completed_response_is_announced_when_the_model_ends_even_if_nobody_polls(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given an endpoint
    endpoint = subscribe(client, receiver)

    # When a background response is created and never polled
    created_at = time.time()
    response_id = background(client)
    [received] = receiver.wait_for(1)

    # Then the event came when the model ended, signed with the endpoint's secret
    assert created_at + MODEL_SECONDS <= received.at < created_at + MODEL_SECONDS + 1.0
    event = unwrap(received, endpoint.signing_secret)
    assert (event.type, event.data.id, event.object) == ("response.completed", response_id, "event")
    # And the record says so, under the same webhook-id
    [delivery] = timed.webhook_deliveries
    assert (delivery.event_type, delivery.response_id, delivery.status) == (
        "response.completed",
        response_id,
        200,
    )
    assert (delivery.webhook_id, delivery.url) == (received.headers["Webhook-Id"], receiver.hook_url)
    # And the response reads as ended
    assert client.responses.retrieve(response_id).status == "completed"


@pytest.mark.parametrize(
    ("plan", "cancel", "event_type"),
    [
        (Plan.fail(), False, "response.failed"),
        (Plan.incomplete(), False, "response.incomplete"),
        (Plan.never_finishes(), True, "response.cancelled"),
    ],
)
def test_failed_incomplete_and_cancelled_responses_are_announced(
    client: OpenAI,
    timed: EmulatorServer,
    receiver: WebhookReceiver,
    plan: Plan,
    cancel: bool,
    event_type: str,
) -> None:
    # Given an endpoint and a response that ends otherwise than completed
    endpoint = subscribe(client, receiver)
    timed.script(plan)
    response_id = background(client)

    # When it ends (by itself, or cancelled)
    if cancel:
        client.responses.cancel(response_id)
    [received] = receiver.wait_for(1)

    # Then its own event type is delivered, signed
    event = unwrap(received, endpoint.signing_secret)
    assert (event.type, event.data.id) == (event_type, response_id)


def test_each_endpoint_gets_only_its_event_types_and_only_for_background_responses(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given one endpoint for failures only, one for completions only
    subscribe(client, receiver, url=receiver.hook_url + "?failures", event_types=["response.failed"])
    completions = subscribe(client, receiver, event_types=["response.completed"])

    # When a foreground and a background response complete
    client.responses.create(model="gpt-4.1-mini", input="Hello")
    response_id = background(client)
    receiver.wait_for(1)
    time.sleep(MODEL_SECONDS)  # time for anything else that would come

    # Then one event went out, for the background one, to the completions endpoint
    [received] = receiver.received
    assert unwrap(received, completions.signing_secret).data.id == response_id
    assert [delivery.url for delivery in timed.webhook_deliveries] == [receiver.hook_url]


def test_a_poll_that_reveals_the_end_sends_the_event(
    emulator: EmulatorServer, openai_client: OpenAI, receiver: WebhookReceiver
) -> None:
    # Given the poll-based emulator (a response ends on its second retrieve) and an endpoint
    endpoint = subscribe(openai_client, receiver)
    response_id = background(openai_client)
    openai_client.responses.retrieve(response_id)
    time.sleep(0.2)
    assert receiver.received == []

    # When the poll that ends it comes
    assert openai_client.responses.retrieve(response_id).status == "completed"

    # Then the event follows
    [received] = receiver.wait_for(1)
    assert unwrap(received, endpoint.signing_secret).data.id == response_id


def test_a_delay_holds_each_delivery_back(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given a one-second delivery delay
    timed.configure_webhooks(delay_seconds=1.0)
    subscribe(client, receiver)

    # When a response ends
    created_at = time.time()
    background(client)
    [received] = receiver.wait_for(1, timeout=5)

    # Then its event came a second after the end
    assert received.at >= created_at + MODEL_SECONDS + 1.0


def test_duplicates_repeat_a_delivery_under_one_webhook_id(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given each delivery sent three times
    timed.configure_webhooks(duplicates=3)
    endpoint = subscribe(client, receiver)

    # When a response ends
    response_id = background(client)
    received = receiver.wait_for(3)

    # Then the same signed event came three times, with one webhook-id
    assert [unwrap(copy, endpoint.signing_secret).data.id for copy in received] == [response_id] * 3
    assert len({copy.headers["Webhook-Id"] for copy in received}) == 1
    assert len({copy.body for copy in received}) == 1


def test_drop_next_never_sends_the_next_deliveries(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given the next delivery dropped
    timed.configure_webhooks(drop_next=1)
    endpoint = subscribe(client, receiver)

    # When two responses end, one after the other
    dropped_id = background(client)
    time.sleep(0.1)
    delivered_id = background(client)
    timed.wait_for_webhook_deliveries(2)
    time.sleep(0.2)

    # Then only the second one's event arrived, and the record shows the first dropped
    assert [unwrap(item, endpoint.signing_secret).data.id for item in receiver.received] == [delivered_id]
    dropped, delivered = timed.webhook_deliveries
    assert (dropped.response_id, dropped.dropped, dropped.status) == (dropped_id, True, None)
    assert (delivered.response_id, delivered.delivered) == (delivered_id, True)


def test_a_drop_probability_drops_the_same_deliveries_for_the_same_seed(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    def dropped_pattern() -> list[bool]:
        timed.reset()
        timed.configure_webhooks(drop_probability=0.5, seed=7)
        subscribe(client, receiver)
        response_ids = [background(client) for _ in range(8)]  # they end in this order
        dropped = {d.response_id for d in timed.wait_for_webhook_deliveries(8) if d.dropped}
        return [response_id in dropped for response_id in response_ids]

    # When the same eight responses end twice under the same seed
    first, second = dropped_pattern(), dropped_pattern()

    # Then the same deliveries were dropped, some but not all
    assert first == second
    assert any(first) and not all(first)


def test_reorder_sends_held_deliveries_newest_first(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given deliveries held in pairs
    timed.configure_webhooks(reorder_batch=2)
    endpoint = subscribe(client, receiver)

    # When two responses end, one after the other
    first_id = background(client)
    time.sleep(0.1)
    second_id = background(client)
    received = receiver.wait_for(2)

    # Then the second one's event came first
    assert [unwrap(item, endpoint.signing_secret).data.id for item in received] == [second_id, first_id]


def test_a_lone_held_delivery_goes_out_after_the_reorder_wait(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given deliveries held in pairs, for at most half a second
    timed.configure_webhooks(reorder_batch=2, reorder_wait_seconds=0.5)
    subscribe(client, receiver)

    # When only one response ends
    created_at = time.time()
    background(client)
    [received] = receiver.wait_for(1)

    # Then its event still came, once the wait was over
    assert received.at >= created_at + MODEL_SECONDS + 0.5
    assert timed.pending_webhook_deliveries == 0


def test_a_refused_delivery_is_retried_with_the_same_webhook_id(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given a receiver that answers 503 twice before taking deliveries
    receiver.answers = [503, 503]
    endpoint = subscribe(client, receiver)

    # When a response ends
    response_id = background(client)
    received = receiver.wait_for(3)

    # Then the third attempt got through, each attempt signed, all under one webhook-id
    assert [unwrap(item, endpoint.signing_secret).data.id for item in received] == [response_id] * 3
    assert len({item.headers["Webhook-Id"] for item in received}) == 1
    deliveries = timed.wait_for_webhook_deliveries(3)
    assert [(d.attempt, d.status, d.delivered) for d in deliveries] == [
        (1, 503, False),
        (2, 503, False),
        (3, 200, True),
    ]


def test_an_unreachable_endpoint_is_retried_then_given_up(client: OpenAI, timed: EmulatorServer) -> None:
    # Given an endpoint where nothing listens, and two retries
    timed.configure_webhooks(retries=2, retry_backoff_seconds=0.01)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client.webhooks.create(
        name="nobody", url=f"http://127.0.0.1:{closed_port}/hook", event_types=["response.completed"]
    )

    # When a response ends
    background(client)
    deliveries = timed.wait_for_webhook_deliveries(3)
    time.sleep(0.2)

    # Then three attempts failed with the connection error, and nothing is left to send
    assert [(d.attempt, d.status) for d in timed.webhook_deliveries] == [(1, None), (2, None), (3, None)]
    assert all("Connect" in str(d.error) for d in deliveries)
    assert timed.pending_webhook_deliveries == 0


def test_a_rotated_secret_signs_the_next_deliveries_and_the_old_one_no_longer_does(
    client: OpenAI, receiver: WebhookReceiver
) -> None:
    # Given an endpoint whose first delivery its secret verifies
    endpoint = subscribe(client, receiver)
    background(client)
    [before] = receiver.wait_for(1)
    unwrap(before, endpoint.signing_secret)

    # When its secret is rotated and another response ends
    rotated = client.webhooks.rotate_secret(endpoint.id)
    after_id = background(client)
    _, after = receiver.wait_for(2)

    # Then the new secret verifies the new delivery, and the old one fails it
    assert isinstance(rotated, WebhookEndpointWithSecret)
    assert rotated.signing_secret != endpoint.signing_secret
    assert unwrap(after, rotated.signing_secret).data.id == after_id
    with pytest.raises(openai.InvalidWebhookSignatureError):
        unwrap(after, endpoint.signing_secret)


def test_a_rotation_may_keep_the_old_secret_signing_for_a_day(
    client: OpenAI, receiver: WebhookReceiver
) -> None:
    # Given an endpoint whose secret is rotated keeping the old one active
    endpoint = subscribe(client, receiver)
    rotated = client.webhooks.rotate_secret(endpoint.id, keep_old_secret_active_for_24_hours=True)

    # When a response ends
    response_id = background(client)
    [received] = receiver.wait_for(1)

    # Then both secrets verify its delivery
    for secret in (endpoint.signing_secret, rotated.signing_secret):
        assert unwrap(received, secret).data.id == response_id


def test_reset_forgets_endpoints_and_deliveries_not_yet_sent(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given a delivery waiting out a delay
    timed.configure_webhooks(delay_seconds=0.5)
    subscribe(client, receiver)
    background(client)
    deadline = time.time() + 5
    while timed.pending_webhook_deliveries == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert timed.pending_webhook_deliveries == 1

    # When the emulator is reset
    timed.reset()
    time.sleep(0.8)

    # Then nothing was delivered, and no endpoint or record is left
    assert receiver.received == []
    assert timed.webhook_deliveries == []
    assert timed.pending_webhook_deliveries == 0
    assert list(client.webhooks.list()) == []


def test_an_endpoint_added_on_the_server_signs_with_the_given_secret(
    client: OpenAI, timed: EmulatorServer, receiver: WebhookReceiver
) -> None:
    # Given an endpoint added by a test with a secret of its own
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGhlLWxvY2FsLXN0YWNr"
    added = timed.add_webhook_endpoint(receiver.hook_url, secret=secret)

    # When a response ends
    response_id = background(client)
    [received] = receiver.wait_for(1)

    # Then that secret verifies it, and the endpoint is listed like any other
    assert added.signing_secret == secret
    assert unwrap(received, secret).data.id == response_id
    assert [endpoint.id for endpoint in client.webhooks.list()] == [added.id]
