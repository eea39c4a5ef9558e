"""What the fan-out of run events reads and hands on: a run event as its stream record carries it, an
environment's outbound webhook subscriptions, and one webhook delivery (an SQS message of the delivery queue)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.run_events import RunEventType


class StreamedRunEvent(DeferredModel):
    """An event item of the runs table (``sk = event#<seq>``, stores/run_events.py) as DynamoDB Streams hands it
    over. ``type`` stays a string: an event type newer than this code is still passed on, never a poison record."""

    run_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    # Kept as ``thread`` on the item (``thread_id`` would put every event in the runs table's by_thread index).
    thread_id: str = Field(min_length=1, validation_alias=AliasChoices("thread", "thread_id"))
    seq: int = Field(ge=1)
    type: str = Field(min_length=1)
    created_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookSubscription(DeferredModel):
    """One outbound subscription of the environment (cdk.json ``webhooks``, checked by infra/config.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1)
    events: list[RunEventType] = Field(min_length=1)
    # A Secrets Manager secret an operator created: ``{"webhook_secret": "whsec_..."}`` or the bare value.
    secret_name: str = Field(min_length=1)


class WebhookDelivery(DeferredModel):
    """One event for one subscription: the message the fan-out enqueues and the delivery Lambda sends. ``body``
    is the exact JSON signed and POSTed, the same bytes and ``webhook_id`` on every attempt."""

    delivery_id: str  # <run_id>:<seq>:<subscription index>
    subscription: int = Field(ge=0)  # its index in the environment's list
    url: str  # where it was meant to go: a subscription whose URL changed since takes no old deliveries
    webhook_id: str
    event_type: str
    body: str
