"""Webhook deliveries: signed events POSTed to the webhook endpoints when background responses end.

The endpoints themselves, and their API (``/v1/webhook_endpoints``), are local/emulator/webhook_endpoints.py;
``Webhooks`` here owns both, under one lock.

When a background response reaches ``completed``, ``failed``, ``cancelled`` or ``incomplete``, the event
(``{"id": "evt_...", "object": "event", "type": "response.completed", "created_at": ..., "data": {"id":
"resp_..."}}``) is POSTed to every endpoint subscribed to its type, signed as Standard Webhooks with the
endpoint's secret (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``). In time-based mode (``model_seconds``) a background thread ends each response
at its time, polled or not; otherwise it ends on the poll that reveals it, as before. Each delivery
(one event to one endpoint) has its own ``webhook-id``, kept by its retries and duplicates.

The test side, on ``EmulatorServer`` (all cleared by ``reset()``; the thread stops with the server):

    server.configure_webhooks(delay_seconds=0.0, duplicates=1, drop_next=0, drop_probability=0.0, seed=0,
                              reorder_batch=0, reorder_wait_seconds=2.0, retries=3,
                              retry_backoff_seconds=0.05)
        Replaces every knob (defaults: prompt, once, in order). ``delay_seconds`` waits before the first
        attempt; ``duplicates`` sends each delivery that many times with the same webhook-id; the next
        ``drop_next`` deliveries, then each with ``drop_probability`` (a ``random.Random(seed)``), are never
        sent; ``reorder_batch`` N >= 2 holds deliveries until N are held (or the first waited
        ``reorder_wait_seconds``) and sends them newest first. A connection error or a non-2xx answer is
        retried ``retries`` times, after ``retry_backoff_seconds`` doubled each time.
    server.add_webhook_endpoint(url, name=..., event_types=..., secret=None) -> WebhookEndpointWithSecret
        What ``client.webhooks.create`` does, with an optional secret of the caller's (``whsec_<base64>``).
    server.webhook_deliveries -> list[WebhookDelivery]
        Every attempt and every dropped delivery, oldest first: event, response, webhook-id, url, the HTTP
        status answered or the error.
    server.wait_for_webhook_deliveries(count, timeout=5.0) -> list[WebhookDelivery]
        The record once it holds ``count`` entries (or the timeout passed).
    server.pending_webhook_deliveries -> int
        Deliveries scheduled, held or waiting for a retry.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from openai.types.webhooks import WebhookEndpointWithSecret
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Request

from local.emulator.errors import ApiError
from local.emulator.items import new_id
from local.emulator.responses import StoredResponse
from local.emulator.webhook_endpoints import WebhookEndpointStore

# A final status of a background response -> its event.
RESPONSE_EVENTS = {
    "completed": "response.completed",
    "failed": "response.failed",
    "cancelled": "response.cancelled",
    "incomplete": "response.incomplete",
}
_SEND_TIMEOUT_SECONDS = 5.0


class WebhookFaults(BaseModel):
    """The delivery knobs (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delay_seconds: float = Field(default=0.0, ge=0)
    duplicates: int = Field(default=1, ge=1)
    drop_next: int = Field(default=0, ge=0)
    drop_probability: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    reorder_batch: int = Field(default=0, ge=0)
    reorder_wait_seconds: float = Field(default=2.0, gt=0)
    retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=0.05, ge=0)


class WebhookDelivery(BaseModel):
    """One attempt to deliver an event to an endpoint, or one delivery dropped on purpose."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    response_id: str
    webhook_id: str
    endpoint_id: str
    url: str
    attempt: int  # 1 for the first try, then each retry; 0 when dropped
    status: int | None  # the HTTP status the receiver answered, None when it answered nothing
    error: str | None  # why it failed (a non-2xx answer, a connection error, dropped), None when delivered
    at: float  # when (time.time())

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def dropped(self) -> bool:
        return self.attempt == 0


@dataclass(frozen=True)
class _Message:
    """One event for one endpoint: what every attempt and duplicate of it sends."""

    event_id: str
    event_type: str
    response_id: str
    webhook_id: str
    endpoint_id: str
    body: str
    due: float
    attempt: int = 1


@dataclass(order=True)
class _Job:
    due: float
    order: int
    run: Callable[[], None] = field(compare=False)
    message: _Message | None = field(default=None, compare=False)  # a delivery, counted as pending


class Webhooks:
    """Endpoints (a ``WebhookEndpointStore``), watched responses and the delivery thread. ``lock`` is the app's:
    ``finish`` (a response retrieve, which ends a due time-based response) runs under it; this object's own lock
    (which also guards the endpoint store) comes after it."""

    def __init__(self, *, lock: threading.RLock, finish: Callable[[str], StoredResponse]) -> None:
        self._app_lock = lock
        self._finish = finish
        self._changed = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._http: httpx.Client | None = None  # the delivery thread's own
        self._generation = 0
        self._clear()

    def _clear(self) -> None:
        self._endpoints = WebhookEndpointStore()
        self._jobs: list[_Job] = []
        self._held: list[_Message] = []
        self._batch = -1  # the held deliveries' batch (reorder_batch)
        self._ended: set[str] = set()  # responses whose event went out
        self._timed: set[str] = set()  # responses with a scheduled end
        self._deliveries: list[WebhookDelivery] = []
        self.configure(WebhookFaults())

    # The test side.
    def configure(self, faults: WebhookFaults) -> None:
        with self._changed:
            self._faults = faults
            self._drops_left = faults.drop_next
            self._random = random.Random(faults.seed)  # noqa: S311 - reproducible test drops, not security

    def add_endpoint(
        self, *, name: str, url: str, event_types: list[str], secret: str | None = None
    ) -> WebhookEndpointWithSecret:
        with self._changed:
            created = self._endpoints.add(name=name, url=url, event_types=event_types, secret=secret)
            return WebhookEndpointWithSecret.model_validate(created)

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for_deliveries(self, count: int, timeout: float) -> list[WebhookDelivery]:
        with self._changed:
            self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout)
            return list(self._deliveries)

    @property
    def pending(self) -> int:
        with self._changed:
            return len(self._held) + sum(job.message is not None for job in self._jobs)

    def reset(self) -> None:
        with self._changed:
            self._generation += 1
            self._clear()
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the delivery thread, forgetting what it had yet to send (it starts again when needed)."""
        with self._changed:
            self._closing, thread = True, self._thread
            self._jobs.clear()
            self._held.clear()
            self._timed.clear()  # a response watched again gets its end scheduled again
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout=_SEND_TIMEOUT_SECONDS + 1)
        with self._changed:
            self._closing, self._thread = False, None
            if self._http is not None:
                self._http.close()
                self._http = None

    # The app side (under the app's lock).
    def watch(self, response: StoredResponse) -> None:
        """Called with every response a request created or read: announce its end, or schedule it."""
        if not response.request.background:
            return
        with self._changed:
            if response.id in self._ended:
                return
            if response.final:
                self._ended.add(response.id)
                self._announce(response)
            elif response.ready_at is not None and response.id not in self._timed:
                self._timed.add(response.id)
                self._schedule(response.ready_at, self._ending(response.id, self._generation))

    def answer(
        self, request: Request, body: Any, webhook_endpoint_id: str | None = None, action: str | None = None
    ) -> dict[str, Any]:
        with self._changed:
            return self._endpoints.answer(request, body, webhook_endpoint_id, action)

    # Events and deliveries (under this object's lock).
    def _ending(self, response_id: str, generation: int) -> Callable[[], None]:
        def end() -> None:
            with self._app_lock:
                if generation != self._generation:
                    return
                try:
                    response = self._finish(response_id)  # ends it, as a poll at this moment would
                except ApiError:  # deleted meanwhile
                    return
                self.watch(response)

        return end

    def _announce(self, response: StoredResponse) -> None:
        event_type = RESPONSE_EVENTS.get(response.status)
        if event_type is None:
            return
        event_id = new_id("evt")
        event = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": int(response.finished_at or time.time()),
            "data": {"id": response.id},
        }
        body = json.dumps(event)
        for endpoint in self._endpoints.subscribed_to(event_type):
            message = _Message(
                event_id=event_id,
                event_type=event_type,
                response_id=response.id,
                webhook_id=new_id("wh"),
                endpoint_id=endpoint.id,
                body=body,
                due=time.time() + self._faults.delay_seconds,
            )
            if self._dropped():
                self._record(replace(message, attempt=0), endpoint.url, status=None, error="dropped")
            elif self._faults.reorder_batch >= 2:
                self._hold(message)
            else:
                self._send_later(message)

    def _dropped(self) -> bool:
        if self._drops_left > 0:
            self._drops_left -= 1
            return True
        return self._faults.drop_probability > 0 and self._random.random() < self._faults.drop_probability

    def _hold(self, message: _Message) -> None:
        self._held.append(message)
        if len(self._held) == 1:  # a new batch: sent when full, or when its first delivery waited enough
            self._batch = batch = next(self._order)
            self._schedule(time.time() + self._faults.reorder_wait_seconds, lambda: self._release(batch))
        if len(self._held) >= self._faults.reorder_batch:
            self._release(self._batch)

    def _release(self, batch: int) -> None:
        """Send the held deliveries of ``batch`` at one moment, newest first."""
        with self._changed:  # reentrant: _hold calls it holding the lock, the thread without
            if batch != self._batch or not self._held:
                return
            due = max(time.time(), *(message.due for message in self._held))
            for message in reversed(self._held):
                self._send_later(replace(message, due=due))
            self._held.clear()

    def _send_later(self, message: _Message) -> None:
        for _ in range(self._faults.duplicates):  # each copy is retried on its own
            self._schedule(message.due, self._sending(message, self._generation), message)

    def _sending(self, message: _Message, generation: int) -> Callable[[], None]:
        return lambda: self._send(message, generation)

    def _send(self, message: _Message, generation: int) -> None:
        """One attempt, outside every lock; a failure is retried with a doubling backoff."""
        with self._changed:
            endpoint = self._endpoints.get(message.endpoint_id)
            if endpoint is None or generation != self._generation:
                return
            url, keys = endpoint.url, endpoint.signing_secrets()
        if self._http is None:
            self._http = httpx.Client(timeout=_SEND_TIMEOUT_SECONDS, trust_env=False)
        status, error = _post(self._http, url, message, keys)
        with self._changed:
            if generation != self._generation:
                return
            self._record(message, url, status=status, error=error)
            if error is not None and message.attempt <= self._faults.retries:
                backoff = self._faults.retry_backoff_seconds * 2 ** (message.attempt - 1)
                retry = replace(message, attempt=message.attempt + 1, due=time.time() + backoff)
                self._schedule(retry.due, self._sending(retry, generation), retry)

    def _record(self, message: _Message, url: str, *, status: int | None, error: str | None) -> None:
        self._deliveries.append(
            WebhookDelivery(
                event_id=message.event_id,
                event_type=message.event_type,
                response_id=message.response_id,
                webhook_id=message.webhook_id,
                endpoint_id=message.endpoint_id,
                url=url,
                attempt=message.attempt,
                status=status,
                error=error,
                at=time.time(),
            )
        )
        self._changed.notify_all()

    # The delivery thread.
    def _schedule(self, due: float, run: Callable[[], None], message: _Message | None = None) -> None:
        heapq.heappush(self._jobs, _Job(due, next(self._order), run, message))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="emulator-webhooks", daemon=True)
            self._thread.start()
        self._changed.notify_all()

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._closing and (not self._jobs or self._jobs[0].due > time.time()):
                    self._changed.wait(self._jobs[0].due - time.time() if self._jobs else None)
                if self._closing:
                    return
                job = heapq.heappop(self._jobs)
            job.run()


def _post(http: httpx.Client, url: str, message: _Message, keys: list[str]) -> tuple[int | None, str | None]:
    """(status, error): error is None for a 2xx answer."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
        "webhook-id": message.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(_signature(key, message, timestamp) for key in keys),
    }
    try:
        answered = http.post(url, content=message.body.encode(), headers=headers)
    except httpx.HTTPError as failure:
        return None, f"{type(failure).__name__}: {failure}"
    ok = 200 <= answered.status_code < 300
    return answered.status_code, None if ok else f"answered HTTP {answered.status_code}"


def _signature(secret: str, message: _Message, timestamp: int) -> str:
    """Standard Webhooks v1: base64 HMAC-SHA256 of id.timestamp.body, keyed by the base64 part of a
    ``whsec_`` secret (any other secret is used as it is, as the SDK's check does)."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    signed = f"{message.webhook_id}.{timestamp}.{message.body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
