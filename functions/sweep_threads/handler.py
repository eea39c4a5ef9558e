"""Sweep threads: on a schedule, repair runs whose execution died and the locks they left (the reconciler's
code, for events that never came), clean threads past their expiry that TTL has not removed yet, and retry
cleanups that failed before (the same code as the TTL stream and deletes)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner import cleanup, run_repair
from threadrunner.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Each repair publishes RunsRepaired itself (threadrunner.run_metrics, by environment and cause).
    report = cleanup.sweep(cleanup.default_context(), repairs=run_repair.default_context())
    logger.info("sweep done", extra=report.model_dump())
    metrics.add_metric(name="ThreadsCleaned", unit=MetricUnit.Count, value=report.cleaned)
    metrics.add_metric(name="CleanupsFailed", unit=MetricUnit.Count, value=report.failed)
    # Past max attempts: what is left is recorded, and a person has to look (alarm on this).
    metrics.add_metric(name="CleanupsGivenUp", unit=MetricUnit.Count, value=report.given_up)
    return report.model_dump()
