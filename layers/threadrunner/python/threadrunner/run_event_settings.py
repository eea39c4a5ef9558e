"""Settings of the run-event fan-out and of outbound webhook delivery (``THREADRUNNER_*``, set by CDK:
infra/constructs/live_events.py, run_event_fanout.py, outbound_webhooks.py)."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from threadrunner.models.run_event_delivery import WebhookSubscription


class RunEventSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="THREADRUNNER_", frozen=True, extra="ignore", defer_build=True
    )

    # The AppSync Events API's HTTP domain (``<id>.appsync-api.<region>.amazonaws.com``); None: no live push.
    live_events_http_domain: str | None = None
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    # The delivery queue of outbound webhooks; None with no subscriptions.
    webhook_queue_url: str | None = None
    # JSON in THREADRUNNER_WEBHOOK_SUBSCRIPTIONS: [{"url", "events", "secret_name"}] (cdk.json ``webhooks``).
    webhook_subscriptions: list[WebhookSubscription] = Field(default_factory=list)
    # One delivery attempt (connect + answer), well inside the delivery Lambda's timeout.
    webhook_timeout_seconds: float = Field(default=8.0, gt=0, le=10)


@cache
def run_event_settings() -> RunEventSettings:
    return RunEventSettings()
