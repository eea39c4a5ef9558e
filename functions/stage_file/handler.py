"""Stage file: S3 ObjectCreated under uploads/ -> check the upload and hand it to the upstream."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import clock
from threadrunner.files import staging
from threadrunner.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    # The claim on a file lasts as long as this invocation can.
    deadline = clock.now() + timedelta(milliseconds=context.get_remaining_time_in_millis())
    statuses = {}
    for record in event.records:
        key = record.s3.get_object.key
        status = staging.stage(key, deadline, staging.default_context())
        statuses[key] = status.value if status else None
    return {"files": statuses}
