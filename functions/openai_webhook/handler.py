"""OpenAI webhook: ``POST /v1/webhooks/openai`` (no JWT: the Standard Webhooks signature authenticates it).
Resumes the run waiting for that response (threadrunner.openai_webhooks, threadrunner.workflow.completion)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import aws, secrets
from threadrunner.observability import logger, metrics, tracer
from threadrunner.openai_webhooks import handle_http
from threadrunner.settings import storage_settings, upstream_settings
from threadrunner.stores.response_waits import ResponseWaitStore


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    secret_name = upstream_settings().openai_webhook_secret_name
    return handle_http(
        event,
        secret=lambda refresh: secrets.webhook_secret(secret_name, refresh=refresh),
        waits=ResponseWaitStore(aws.table(storage_settings().runs_table)),
        stepfunctions=aws.client("stepfunctions"),
    )
