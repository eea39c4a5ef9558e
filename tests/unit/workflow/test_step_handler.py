"""The Powertools wiring every step shares: the run id is the logs' correlation id."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import BaseModel
from threadrunner.models.workflow import FinishRunOutput
from threadrunner.observability import logger
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.handler import step_handler

from local.lambdas import LambdaContext


class _Event(BaseModel):
    run_id: str


def test_every_log_line_of_a_step_carries_the_run_id_as_correlation_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("threadrunner.workflow.handler.default_context", lambda: None)
    output = io.StringIO()  # what the Powertools JSON handler writes (to stdout in Lambda)
    handler_of_logger = logger.registered_handler
    assert isinstance(handler_of_logger, logging.StreamHandler)
    previous = handler_of_logger.setStream(output)

    def some_step(event: _Event, ctx: StepContext) -> BaseModel:
        logger.info("doing the step")
        return FinishRunOutput(status="completed")

    handler = step_handler(some_step, _Event)
    context = LambdaContext(
        function_name="threadrunner-test-some-step", invoked_function_arn="arn:x", timeout_seconds=5
    )

    try:
        assert handler({"run_id": "run_01"}, context) == {"status": "completed"}
    finally:
        handler_of_logger.setStream(previous)  # type: ignore[arg-type]

    lines = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("message") == "doing the step"]
    assert (
        logged["correlation_id"] == "run_01"
        and logged["run_id"] == "run_01"
        and logged["step"] == "some_step"
    )
