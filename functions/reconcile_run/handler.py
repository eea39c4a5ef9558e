"""Reconcile run: an EventBridge rule hands over every execution of the run workflow that ended FAILED,
TIMED_OUT or ABORTED. Its run is ended (failed, the cause as its error code) unless it has ended, and its
thread handed on (threadrunner.run_repair). A failure is retried by Lambda, then dead-lettered; the sweep
repairs what is left."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import run_repair
from threadrunner.models.repairs import ExecutionStatusChangeEvent
from threadrunner.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=ExecutionStatusChangeEvent)
def lambda_handler(event: ExecutionStatusChangeEvent, context: LambdaContext) -> dict[str, Any]:
    change = event.detail
    logger.set_correlation_id(change.name)  # the run id, as in every step's log lines
    logger.append_keys(run_id=change.name, execution_status=change.status.value)
    repaired = run_repair.reconcile(change, run_repair.default_context())
    return {"run_id": change.name, "repaired": repaired.value if repaired else None}
