"""Ending a run with its accounting: the final status, the run's metrics and the user's usage counters in one
transaction (conditional on the run not having ended), then the CloudWatch metrics. A retried Finish run finds
the run ended and counts nothing twice; a reader never sees an ended run without its metrics."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from threadrunner import clock, run_metrics
from threadrunner.models.records import RunError, RunMetrics, RunRecord, RunStatus
from threadrunner.pricing import PriceTable, estimate_cost
from threadrunner.settings import CostSettings, RunSettings
from threadrunner.stores.runs import RunStore
from threadrunner.stores.usage import UsageStore

logger = logging.getLogger(__name__)


def measure(run: RunRecord, prices: PriceTable) -> RunMetrics:
    """The metrics of an ended run (its status, completion time and error already set)."""
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


class EndingContext(Protocol):
    """What ending a run needs, whichever side ends it (a workflow step, the API, the reconciler)."""

    @property
    def runs(self) -> RunStore: ...
    @property
    def usage(self) -> UsageStore | None: ...
    @property
    def cost_settings(self) -> CostSettings: ...
    @property
    def run_settings(self) -> RunSettings: ...


def end_now(ctx: EndingContext, run: RunRecord, status: RunStatus, error: RunError | None = None) -> bool:
    """End ``run`` now, with the context's stores, prices and environment (see end_run)."""
    return end_run(
        run,
        ctx.runs,
        ctx.usage,
        ctx.cost_settings.price_table,
        environment=ctx.run_settings.environment,
        status=status,
        completed_at=clock.now(),
        error=error,
    )


def end_run(
    run: RunRecord,
    runs: RunStore,
    usage: UsageStore | None,
    prices: PriceTable,
    *,
    environment: str,
    status: RunStatus,
    completed_at: datetime,
    error: RunError | None = None,
) -> bool:
    """End ``run`` (as read just before) with its metrics; False when it had ended already.

    Its tokens count on its user's day whatever happens to the thread: deleting a thread mid-run does not
    get around a budget. (A user's deletion removes the counters after the runs: services.threads, cleanup.)"""
    ended = run.model_copy(
        update={"status": status, "completed_at": completed_at, "error": error or run.error}
    )
    metrics = measure(ended, prices)
    counters = []
    if usage is not None:
        day = completed_at.date()
        counters.append(usage.counter_update(run.user_id, day, run.usage, metrics.estimated_cost_usd))
    fields: dict[str, object] = {"status": status, "completed_at": completed_at, "metrics": metrics}
    if error is not None:
        fields["error"] = error
    if not runs.finish(run.id, also=counters, **fields):
        return False
    _publish(ended, metrics, environment)
    return True


def _publish(run: RunRecord, metrics: RunMetrics, environment: str) -> None:
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
