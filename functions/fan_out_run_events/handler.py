"""Fan out run events: DynamoDB Streams on the runs table, filtered to new ``event#`` items. Each event goes
to its outbound webhook subscriptions (the delivery queue) and to its run's live channel (AppSync Events);
records whose deliveries could not be enqueued are reported back (partial batch response) and retried
(threadrunner.run_event_fanout)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import aws
from threadrunner.observability import logger, metrics, tracer
from threadrunner.run_event_fanout import AppSyncEventsPublisher, SqsDeliveryQueue, fan_out
from threadrunner.run_event_settings import run_event_settings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = run_event_settings()
    result = fan_out(
        event.get("Records", []),
        subscriptions=settings.webhook_subscriptions,
        queue=SqsDeliveryQueue(aws.client("sqs"), settings.webhook_queue_url)
        if settings.webhook_queue_url
        else None,
        publisher=AppSyncEventsPublisher(settings.live_events_http_domain, settings.region)
        if settings.live_events_http_domain
        else None,
    )
    metrics.add_metric(name="LiveEventsPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="LiveEventsDropped", unit=MetricUnit.Count, value=result.live_dropped)
    metrics.add_metric(name="WebhookDeliveriesEnqueued", unit=MetricUnit.Count, value=result.enqueued)
    return {"batchItemFailures": [{"itemIdentifier": identifier} for identifier in result.failed]}
