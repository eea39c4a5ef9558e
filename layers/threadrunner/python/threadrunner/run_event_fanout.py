"""Fan-out of run events: the runs table's stream (INSERTs of ``event#`` items only, filtered by the event
source mapping) -> outbound webhook deliveries (SQS) and live push to browsers (AppSync Events).

Per batch, in stream order:
1. every event of a subscribed type becomes one delivery per subscription (threadrunner.outbound_webhooks),
   enqueued on the delivery queue. This part must happen: a record whose deliveries could not be enqueued is
   the batch's first failure, and it and every record after it are reported back (Lambda retries from there;
   what came before is checkpointed, so nothing before it is enqueued twice).
2. the events that got that far are published to their run's channel ``/runs/<user id>/<run id>`` (at most
   five per request, AppSync Events' batch limit). Live push is best effort: a failed publish is logged and
   counted, never retried, and never holds back the webhooks or the next runs' events in the shard. A client
   that sees a gap in ``seq`` (or reconnects) catches up from the event log: ``GET /v1/runs/{id}/events?after=``.

A retried record may publish or enqueue an event again: both carry the event's ``seq`` and webhook id, which
subscribers deduplicate on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from threadrunner.models.run_event_delivery import StreamedRunEvent, WebhookDelivery, WebhookSubscription
from threadrunner.outbound_webhooks import deliveries_for
from threadrunner.stores._dynamo import from_item

logger = logging.getLogger(__name__)

CHANNEL_NAMESPACE = "runs"
# AppSync Events: a channel segment is letters, digits and dashes, at most 50 characters; a publish request
# carries at most five events, each at most 240 KB (a request here carries at most 200 KB in all).
_SEGMENT = re.compile(r"^[A-Za-z0-9-]{1,50}$")
MAX_EVENTS_PER_PUBLISH = 5
MAX_LIVE_EVENT_BYTES = 200_000
# SQS SendMessageBatch takes at most ten messages.
MAX_MESSAGES_PER_SEND = 10


def run_channel(user_id: str, run_id: str) -> str | None:
    """The run's live channel, ``/runs/<user id>/<run id with "-" for "_">`` (run ids are ``run_<base32>``;
    channel segments take no underscore), or None when the user id cannot be a channel segment (a subject of
    another issuer, e.g. ``auth0|123``): that user's runs have no live push, only the event log. The user id is
    never rewritten: the channel's rule (infra/appsync/runs_channel.js) compares it to the token's ``sub`` as
    it is, so no two users can share a channel."""
    run_segment = run_id.replace("_", "-")
    if not (_SEGMENT.match(user_id) and _SEGMENT.match(run_segment)):
        return None
    return f"/{CHANNEL_NAMESPACE}/{user_id}/{run_segment}"


def live_event(event: StreamedRunEvent) -> str:
    """What subscribers of the run's channel receive (a JSON string, as AppSync Events takes events): the event
    as the event log serves it, with its run. One too large for AppSync Events goes as a stub without ``data``:
    the client reads it from the log."""
    body = {
        "run_id": event.run_id,
        "thread_id": event.thread_id,
        "seq": event.seq,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
    }
    whole = json.dumps({**body, "data": event.data}, separators=(",", ":"), default=str)
    if len(whole.encode()) <= MAX_LIVE_EVENT_BYTES:
        return whole
    return json.dumps({**body, "truncated": True}, separators=(",", ":"))


class LivePublisher(Protocol):
    def publish(self, channel: str, events: Sequence[str]) -> None:
        """Publish ``events`` (JSON strings, at most five) to ``channel``; raises when any was not taken."""


class DeliveryQueue(Protocol):
    def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        """Enqueue up to ten deliveries; the indexes (in ``deliveries``) of those that were not enqueued."""


class LivePublishError(RuntimeError):
    """AppSync Events did not take every event of a publish request."""


class AppSyncEventsPublisher:
    """POST ``https://<http domain>/event`` with ``{"channel", "events"}``, signed with SigV4 (service
    ``appsync``) by the function's role, which may ``appsync:EventPublish`` on this API only."""

    def __init__(
        self,
        http_domain: str,
        region: str,
        *,
        credentials: Callable[[], Any] | None = None,
        send: Callable[[Any], Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._domain = http_domain
        self._region = region
        self._credentials = credentials or _role_credentials
        self._send = send or _botocore_send(timeout)

    def publish(self, channel: str, events: Sequence[str]) -> None:
        # botocore comes with the runtime; imported on first use, not at INIT.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            method="POST",
            url=f"https://{self._domain}/event",
            data=json.dumps({"channel": channel, "events": list(events)}).encode(),
            headers={"content-type": "application/json", "host": self._domain},
        )
        SigV4Auth(self._credentials(), "appsync", self._region).add_auth(request)
        response = self._send(request.prepare())
        if response.status_code != 200:
            raise LivePublishError(f"AppSync Events answered {response.status_code}")
        answer = json.loads(response.content or b"{}")
        if answer.get("failed"):
            codes = sorted({str(failure.get("code")) for failure in answer["failed"]})
            raise LivePublishError(f"AppSync Events refused {len(answer['failed'])} event(s): {codes}")


@cache
def _botocore_session() -> Any:
    from threadrunner.observability import trace_library

    trace_library("botocore")
    import botocore.session

    return botocore.session.get_session()


def _role_credentials() -> Any:
    return _botocore_session().get_credentials().get_frozen_credentials()


def _botocore_send(timeout: float) -> Callable[[Any], Any]:
    @cache
    def session() -> Any:
        from botocore.httpsession import URLLib3Session

        return URLLib3Session(timeout=timeout)

    return lambda prepared: session().send(prepared)


class SqsDeliveryQueue:
    """The delivery queue: one message per delivery, its body the ``WebhookDelivery`` and its id in an
    attribute (logs and the dead-letter queue show which event for which subscription)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        answer = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": delivery.model_dump_json(),
                    "MessageAttributes": {
                        "delivery_id": {"DataType": "String", "StringValue": delivery.delivery_id}
                    },
                }
                for index, delivery in enumerate(deliveries)
            ],
        )
        return sorted(int(failure["Id"]) for failure in answer.get("Failed", []))


@dataclass
class FanOutResult:
    failed: list[str] = field(default_factory=list)  # the records' itemIdentifiers (stream sequence numbers)
    enqueued: int = 0
    published: int = 0
    live_dropped: int = 0  # events with no live push: a failed publish, or a user id no channel can carry


def event_of(record: Mapping[str, Any]) -> StreamedRunEvent:
    """The run event of a DynamoDB Streams record (its NewImage), as the Lambda event carries it."""
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    image = DynamoDBRecord(dict(record)).dynamodb
    if image is None or not image.new_image:
        raise ValueError("a stream record without its new image")
    return from_item(StreamedRunEvent, dict(image.new_image))


def fan_out(
    records: Sequence[Mapping[str, Any]],
    *,
    subscriptions: Sequence[WebhookSubscription],
    queue: DeliveryQueue | None,
    publisher: LivePublisher | None,
) -> FanOutResult:
    result = FanOutResult()
    taken: list[StreamedRunEvent] = []
    pending: list[tuple[int, WebhookDelivery]] = []  # (position in taken, delivery)
    for position, record in enumerate(records):
        try:
            event = event_of(record)
        except (ValueError, TypeError, KeyError):  # pydantic's ValidationError is a ValueError
            logger.exception("not a run event record", extra={"record": _identifier(record)})
            result.failed = [_identifier(r) for r in records[position:]]
            break
        taken.append(event)
        pending.extend((len(taken) - 1, delivery) for delivery in deliveries_for(event, subscriptions))

    cut = _enqueue(pending, queue, result)
    if cut is not None:
        result.failed = [_identifier(r) for r in records[cut:]]
        taken = taken[:cut]
    _publish(taken, publisher, result)
    return result


def _enqueue(
    pending: list[tuple[int, WebhookDelivery]], queue: DeliveryQueue | None, result: FanOutResult
) -> int | None:
    """Enqueue in order; the position of the first event whose deliveries did not all go (None: all went)."""
    if not pending:
        return None
    if queue is None:
        raise RuntimeError("webhook subscriptions are configured without a delivery queue")
    for start in range(0, len(pending), MAX_MESSAGES_PER_SEND):
        chunk = pending[start : start + MAX_MESSAGES_PER_SEND]
        try:
            refused = queue.enqueue([delivery for _, delivery in chunk])
        except Exception:  # any SQS error: this chunk's first event is where the retry starts
            logger.exception("webhook deliveries not enqueued", extra={"delivery": chunk[0][1].delivery_id})
            return chunk[0][0]
        result.enqueued += len(chunk) - len(refused)
        if refused:
            first = chunk[refused[0]]
            logger.error("webhook deliveries refused by SQS", extra={"delivery": first[1].delivery_id})
            return first[0]
    return None


def _publish(events: list[StreamedRunEvent], publisher: LivePublisher | None, result: FanOutResult) -> None:
    if publisher is None:
        return
    for channel, group in _by_channel(events, result):
        for batch in _by_size([(event, live_event(event)) for event in group]):
            try:
                publisher.publish(channel, [body for _, body in batch])
            except Exception:  # best effort: the client catches up from the event log
                logger.exception(
                    "live events not published",
                    extra={"run_id": batch[0][0].run_id, "seqs": [event.seq for event, _ in batch]},
                )
                result.live_dropped += len(batch)
            else:
                result.published += len(batch)


def _by_size(
    bodies: list[tuple[StreamedRunEvent, str]],
) -> Iterator[list[tuple[StreamedRunEvent, str]]]:
    """Consecutive events whose bodies together stay within one event's size limit (one request each)."""
    batch: list[tuple[StreamedRunEvent, str]] = []
    size = 0
    for event, body in bodies:
        length = len(body.encode())
        if batch and size + length > MAX_LIVE_EVENT_BYTES:
            yield batch
            batch, size = [], 0
        batch.append((event, body))
        size += length
    if batch:
        yield batch


def _by_channel(
    events: list[StreamedRunEvent], result: FanOutResult
) -> Iterator[tuple[str, list[StreamedRunEvent]]]:
    """Runs of consecutive events of one channel, at most five each, in order."""
    group: list[StreamedRunEvent] = []
    channel: str | None = None
    for event in events:
        this = run_channel(event.user_id, event.run_id)
        if this is None:
            logger.warning("no live channel for this user id", extra={"run_id": event.run_id})
            result.live_dropped += 1
            continue
        if group and channel is not None and (this != channel or len(group) == MAX_EVENTS_PER_PUBLISH):
            yield channel, group
            group = []
        channel = this
        group.append(event)
    if group and channel is not None:
        yield channel, group


def _identifier(record: Mapping[str, Any]) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))
