"""Turns a step function into a Lambda handler, with the same Powertools wiring for every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from threadrunner.observability import logger, metrics, tracer
from threadrunner.workflow.context import StepContext, default_context
from threadrunner.workflow.invocation import lambda_invocation

InputT = TypeVar("InputT", bound=BaseModel)


def step_handler(
    step: Callable[[InputT, StepContext], BaseModel], model: type[InputT]
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(
        capture_response=False
    )  # responses are small, but keep payloads out of traces
    @metrics.log_metrics
    @event_parser(model=model)
    def lambda_handler(event: InputT, context: LambdaContext) -> dict[str, Any]:
        run_id = getattr(event, "run_id", None)
        logger.set_correlation_id(run_id)  # every log line of a run, whatever the step, shares its id
        logger.append_keys(run_id=run_id, step=step.__name__)
        with lambda_invocation(context):  # Check run polls inside the invocation while time is left
            return step(event, default_context()).model_dump(mode="json")

    return lambda_handler
