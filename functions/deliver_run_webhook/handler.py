"""Deliver run webhooks: SQS (the delivery queue the fan-out fills) -> one signed Standard Webhooks POST per
message. A delivery that fails is put out of sight for a growing backoff and reported back (partial batch
response); the queue dead-letters it after its last attempt (threadrunner.outbound_webhooks)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import aws, secrets
from threadrunner.observability import logger, metrics, tracer
from threadrunner.outbound_webhooks import deliver_messages, urllib3_post
from threadrunner.run_event_settings import run_event_settings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = run_event_settings()

    def delay(receipt_handle: str, seconds: int) -> None:
        aws.client("sqs").change_message_visibility(
            QueueUrl=settings.webhook_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    failed = deliver_messages(
        event.get("Records", []),
        subscriptions=settings.webhook_subscriptions,
        secret_for=secrets.outbound_webhook_secret,
        send=urllib3_post,
        delay=delay,
        timeout=settings.webhook_timeout_seconds,
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
