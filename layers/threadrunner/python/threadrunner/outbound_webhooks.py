"""Outbound run webhooks: each run event of a subscribed type goes to the subscription's URL as a Standard
Webhooks request (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

The fan-out (threadrunner.run_event_fanout) turns an event into one ``WebhookDelivery`` per subscription and
enqueues it; the delivery Lambda sends it. ``webhook-id`` is ``evt_<run id>_<seq>``: made from the event alone,
so every attempt, every re-enqueue after a stream retry and every subscription sees the same id for the same
event (receivers deduplicate on it), never two ids for one event. The body is built once, at enqueue, and sent
byte for byte on every attempt; only the timestamp and the signature are new each time (a receiver refuses a
timestamp older than its tolerance, five minutes in the openai SDK).

A 2xx answer delivers; anything else (another status, a timeout, a refused connection) leaves the message on
the queue, out of sight for a backoff that grows with each attempt, until the queue's redrive dead-letters it.
Redirects are not followed: the signature is for the configured URL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pydantic import ValidationError

from threadrunner.models.run_event_delivery import StreamedRunEvent, WebhookDelivery, WebhookSubscription
from threadrunner.standard_webhooks import signed_headers

logger = logging.getLogger(__name__)

WEBHOOK_ID_PREFIX = "evt_"
USER_AGENT = "threadrunner-webhooks/1"
# Backoff between attempts: 30 s, 2 min, 8 min, 32 min, then every 2 h, until the queue's maxReceiveCount.
RETRY_BASE_SECONDS = 30
RETRY_FACTOR = 4
RETRY_MAX_SECONDS = 2 * 3600


def webhook_id(run_id: str, seq: int) -> str:
    return f"{WEBHOOK_ID_PREFIX}{run_id}_{seq}"


def delivery_id(run_id: str, seq: int, subscription: int) -> str:
    return f"{run_id}:{seq}:{subscription}"


def webhook_body(event: StreamedRunEvent) -> str:
    """``{"id", "type", "created_at", "data"}``; ``data`` is the event's own small fields (ids, counts, codes)
    and whose run it is. Never a secret: events hold none, and nothing else goes in."""
    return json.dumps(
        {
            "id": webhook_id(event.run_id, event.seq),
            "type": event.type,
            "created_at": event.created_at.isoformat(),
            "data": {
                **event.data,
                "run_id": event.run_id,
                "thread_id": event.thread_id,
                "user_id": event.user_id,
                "seq": event.seq,
            },
        },
        separators=(",", ":"),
        default=str,
    )


def deliveries_for(
    event: StreamedRunEvent, subscriptions: Sequence[WebhookSubscription]
) -> list[WebhookDelivery]:
    """One delivery per subscription that lists the event's type, in the subscriptions' order."""
    wanted = [
        index
        for index, subscription in enumerate(subscriptions)
        if event.type in {str(kind) for kind in subscription.events}
    ]
    if not wanted:
        return []
    body = webhook_body(event)
    return [
        WebhookDelivery(
            delivery_id=delivery_id(event.run_id, event.seq, index),
            subscription=index,
            url=subscriptions[index].url,
            webhook_id=webhook_id(event.run_id, event.seq),
            event_type=event.type,
            body=body,
        )
        for index in wanted
    ]


class Sender(Protocol):
    """POSTs ``body`` to ``url`` with ``headers``; the answer's status code (raises when there is none)."""

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int: ...


@cache
def _pool() -> Any:
    # urllib3 comes with the Lambda runtime (botocore's own HTTP client): imported on first use, not at INIT.
    import urllib3

    return urllib3.PoolManager(retries=False)


def urllib3_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    import urllib3

    response = _pool().request(
        "POST",
        url,
        body=body,
        headers=dict(headers),
        timeout=urllib3.Timeout(total=timeout, connect=min(3.0, timeout)),
        redirect=False,
        preload_content=False,
    )
    try:
        return int(response.status)
    finally:
        response.release_conn()


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    webhook_id: str
    status: int | None  # None: no answer (timeout, refused, TLS)
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def deliver(
    delivery: WebhookDelivery,
    *,
    secret: str,
    send: Sender,
    timeout: float,
    now: Callable[[], float] = time.time,
) -> DeliveryAttempt:
    """One attempt: sign ``delivery.body`` as of now and POST it."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(secret, delivery.webhook_id, int(now()), delivery.body),
    }
    try:
        status = send(delivery.url, delivery.body.encode(), headers, timeout)
    except Exception as error:  # any failure to get an answer is a failed attempt, retried
        return DeliveryAttempt(delivery.delivery_id, delivery.webhook_id, None, type(error).__name__)
    return DeliveryAttempt(delivery.delivery_id, delivery.webhook_id, status)


def retry_delay_seconds(receive_count: int) -> int:
    """How long a failed delivery stays out of sight before its next attempt (``receive_count`` >= 1)."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * RETRY_FACTOR ** max(0, receive_count - 1))


def deliver_messages(
    records: Sequence[Mapping[str, Any]],
    *,
    subscriptions: Sequence[WebhookSubscription],
    secret_for: Callable[[str], str],
    send: Sender,
    delay: Callable[[str, int], None],
    timeout: float,
    now: Callable[[], float] = time.time,
) -> list[str]:
    """Deliver each SQS record of the delivery queue; the ``messageId``s that failed (the batch's item
    failures). A failed one is first put out of sight for its backoff: ``delay(receipt handle, seconds)``."""
    failed: list[str] = []
    for record in records:
        message_id = str(record["messageId"])
        try:
            delivery = WebhookDelivery.model_validate_json(record["body"])
        except ValidationError:
            logger.error(
                "not a webhook delivery; it stays until dead-lettered", extra={"message_id": message_id}
            )
            failed.append(message_id)
            continue
        subscription = _subscription(delivery, subscriptions)
        if subscription is None:
            # The operator removed or re-pointed the subscription since: the delivery is not sent anywhere.
            logger.warning(
                "webhook subscription gone; delivery dropped",
                extra={"delivery": delivery.delivery_id, "subscription": delivery.subscription},
            )
            continue
        try:
            secret = secret_for(subscription.secret_name)
        except Exception:  # unreadable or empty secret: retried, then dead-lettered
            logger.exception("webhook secret unreadable", extra={"secret_name": subscription.secret_name})
            attempt = DeliveryAttempt(delivery.delivery_id, delivery.webhook_id, None, "SecretUnavailable")
        else:
            attempt = deliver(delivery, secret=secret, send=send, timeout=timeout, now=now)
        if attempt.delivered:
            logger.info(
                "webhook delivered",
                extra={
                    "delivery": attempt.delivery_id,
                    "webhook_id": attempt.webhook_id,
                    "status": attempt.status,
                },
            )
            continue
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        seconds = retry_delay_seconds(receive_count)
        logger.warning(
            "webhook not delivered; retried later",
            extra={
                "delivery": attempt.delivery_id,
                "webhook_id": attempt.webhook_id,
                "status": attempt.status,
                "error": attempt.error,
                "attempt": receive_count,
                "retry_in_seconds": seconds,
            },
        )
        try:
            delay(str(record["receiptHandle"]), seconds)
        except Exception:  # without the backoff, the queue's visibility timeout still applies
            logger.exception("could not delay the retry", extra={"delivery": attempt.delivery_id})
        failed.append(message_id)
    return failed


def _subscription(
    delivery: WebhookDelivery, subscriptions: Sequence[WebhookSubscription]
) -> WebhookSubscription | None:
    if delivery.subscription >= len(subscriptions):
        return None
    subscription = subscriptions[delivery.subscription]
    return subscription if subscription.url == delivery.url else None
