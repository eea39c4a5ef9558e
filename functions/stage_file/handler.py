"""Stage file: S3 Object Created under uploads/ (an EventBridge rule) -> copy the upload to staged/ (the file's
bytes from then on), check the copy and hand it to the upstream. EventBridge retries a failed invocation, then
dead-letters the event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import clock
from threadrunner.files import staging
from threadrunner.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=S3EventBridgeNotificationEvent)
def lambda_handler(event: S3EventBridgeNotificationEvent, context: LambdaContext) -> dict[str, Any]:
    # The claim on a file lasts as long as this invocation can.
    deadline = clock.now() + timedelta(milliseconds=context.get_remaining_time_in_millis())
    key = event.detail.object.key
    status = staging.stage(key, deadline, staging.default_context())
    return {"files": {key: status.value if status else None}}
