"""What an ended run cost and did, recorded once: its metrics on the run, its usage on the user's day
(one transaction, guarded by the run's ``metrics`` attribute), then the CloudWatch metrics. A retried
Finish run finds the metrics recorded and counts nothing twice."""

from __future__ import annotations

import logging

from threadrunner import clock, run_metrics
from threadrunner.models.records import RunMetrics, RunRecord
from threadrunner.pricing import PriceTable, estimate_cost
from threadrunner.stores.runs import RunStore
from threadrunner.stores.usage import UsageStore

logger = logging.getLogger(__name__)


def measure(run: RunRecord, prices: PriceTable) -> RunMetrics:
    ended = run.completed_at or clock.now()
    started = run.started_at
    return RunMetrics(
        status=run.status,
        duration_seconds=(ended - started).total_seconds() if started else None,
        queue_wait_seconds=(started - run.created_at).total_seconds() if started else None,
        tool_calls=len(run.tool_calls),
        tool_errors=sum(1 for call in run.tool_calls if call.is_error),
        estimated_cost_usd=estimate_cost(run.model, run.usage, prices),
        error=run.error.code if run.error else None,
    )


def record_ending(
    run_id: str,
    runs: RunStore,
    usage: UsageStore | None,
    prices: PriceTable,
    *,
    environment: str,
    count_usage: bool = True,
) -> RunMetrics | None:
    """Account for an ended run; None when it has not ended or was accounted for already.

    ``count_usage`` False leaves the user's counters alone (their data is being deleted)."""
    run = runs.get(run_id)
    if not run.status.is_terminal or run.metrics is not None:
        return None
    metrics = measure(run, prices)
    day = (run.completed_at or clock.now()).date()
    counters = (
        [usage.counter_update(run.user_id, day, run.usage, metrics.estimated_cost_usd)]
        if usage is not None and count_usage
        else []
    )
    if not runs.record_metrics(run.id, metrics, also=counters):
        return None
    run_metrics.run_ended(run, metrics, environment=environment)
    if metrics.estimated_cost_usd is None:
        logger.warning("no price for the run's model: its cost is unknown", extra={"model": run.model})
    # Ids, counts and codes only: never the message, the answer or tool outputs.
    logger.info(
        "run ended",
        extra={
            "run_id": run.id,
            "thread_id": run.thread_id,
            "assistant": run.assistant,
            "model": run.model,
            **run.usage.model_dump(),
            **metrics.model_dump(mode="json"),
        },
    )
    return metrics
