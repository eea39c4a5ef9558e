"""Delete threads: invoked asynchronously by the API (DELETE of a thread or of the caller's data). A failure
is retried by Lambda, then lands in the cleanup dead-letter queue; the recorded cleanup stays for the sweep."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import cleanup
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=DeleteThreadsRequest)
def lambda_handler(event: DeleteThreadsRequest, context: LambdaContext) -> dict[str, Any]:
    return {"cleaned": cleanup.delete_threads(event, cleanup.default_context())}
