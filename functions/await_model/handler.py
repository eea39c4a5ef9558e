"""Await model: the "Wait for model" callback task (``completion: webhook``) records its task token under the
run's current response id; the OpenAI webhook resumes it (threadrunner.workflow.completion)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import aws
from threadrunner.observability import logger, metrics, tracer
from threadrunner.settings import storage_settings
from threadrunner.stores.response_waits import ResponseWaitStore
from threadrunner.stores.runs import RunStore
from threadrunner.workflow.completion import AwaitModelInput, await_model


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = AwaitModelInput.model_validate(event)
    logger.set_correlation_id(step.run_id)
    runs_table = aws.table(storage_settings().runs_table)
    return await_model(
        step,
        runs=RunStore(runs_table),
        waits=ResponseWaitStore(runs_table),
        stepfunctions=aws.client("stepfunctions"),
    ).model_dump(mode="json")
