"""Run metrics in CloudWatch Embedded Metric Format: the one namespace and the dimension sets every emitter
uses (the steps here, the chat engine's Fallbacks).

Powertools gives a metric set one dimension set per flush, so each set is its own EMF document: by
environment (what the dashboard and the alarms read), by environment and assistant, and, for tokens and
cost, by environment, assistant and model.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from threadrunner.assistant_catalog import metric_name
from threadrunner.models.records import RunMetrics, RunRecord, RunStatus

NAMESPACE = "threadrunner"

RUNS_STARTED = "RunsStarted"
RUNS_ENDED = {
    RunStatus.completed: "RunsCompleted",
    RunStatus.failed: "RunsFailed",
    RunStatus.timed_out: "RunsTimedOut",
    RunStatus.cancelled: "RunsCancelled",
}
RUN_DURATION = "RunDuration"
QUEUE_WAIT = "QueueWait"
TOOL_CALLS = "ToolCalls"
TOOL_ERRORS = "ToolErrors"
ESTIMATED_COST = "EstimatedCost"
# A run on a model the price table does not know: its cost is unknown, not zero.
RUNS_WITHOUT_PRICE = "RunsWithoutPrice"
FALLBACKS = "Fallbacks"
# A run whose execution died, or a thread's lock left wrong, put right (threadrunner.run_repair), by cause.
RUNS_REPAIRED = "RunsRepaired"
TOKENS = {
    "PromptTokens": "prompt_tokens",
    "CachedTokens": "cached_tokens",
    "CompletionTokens": "completion_tokens",
    "ReasoningTokens": "reasoning_tokens",
}

Values = Mapping[str, tuple[float, MetricUnit]]


def publish(
    values: Values,
    *,
    environment: str,
    assistant: str | None = None,
    model: str | None = None,
    cause: str | None = None,
) -> None:
    """One EMF document: ``values`` under exactly these dimensions (no implicit ``service``)."""
    if not values:
        return
    document = EphemeralMetrics(namespace=NAMESPACE)
    document.service = ""  # no implicit service dimension: alarms match these dimension sets exactly
    document.add_dimension(name="environment", value=environment)
    if assistant is not None:
        document.add_dimension(name="assistant", value=assistant)
    if model is not None:
        document.add_dimension(name="model", value=model)
    if cause is not None:
        document.add_dimension(name="cause", value=cause)
    for name, (value, unit) in values.items():
        document.add_metric(name=name, unit=unit, value=value)
    document.flush_metrics()


def count(name: str, *, environment: str, assistant: str, model: str | None = None, value: float = 1) -> None:
    """A counter by environment and by assistant (and model, if given), e.g. ``count(FALLBACKS, ...)``."""
    publish({name: (value, MetricUnit.Count)}, environment=environment)
    publish(
        {name: (value, MetricUnit.Count)},
        environment=environment,
        assistant=metric_name(assistant),
        model=model,
    )


def run_repaired(cause: str, *, environment: str) -> None:
    """One repair: by environment (what the alarm reads) and by environment and cause."""
    values: Values = {RUNS_REPAIRED: (1, MetricUnit.Count)}
    publish(values, environment=environment)
    publish(values, environment=environment, cause=cause)


def run_started(run: RunRecord, *, environment: str, queue_wait_seconds: float) -> None:
    values: Values = {
        RUNS_STARTED: (1, MetricUnit.Count),
        QUEUE_WAIT: (queue_wait_seconds, MetricUnit.Seconds),
    }
    publish(values, environment=environment)
    publish(values, environment=environment, assistant=metric_name(run.assistant))


def run_ended(run: RunRecord, metrics: RunMetrics, *, environment: str) -> None:
    """Status, duration, tool calls, tokens and cost of a run that has ended (published once per run)."""
    outcome: dict[str, tuple[float, MetricUnit]] = {
        RUNS_ENDED[metrics.status]: (1, MetricUnit.Count),
        TOOL_CALLS: (metrics.tool_calls, MetricUnit.Count),
        TOOL_ERRORS: (metrics.tool_errors, MetricUnit.Count),
    }
    if metrics.duration_seconds is not None:
        outcome[RUN_DURATION] = (metrics.duration_seconds, MetricUnit.Seconds)
    usage = run.usage
    spend: dict[str, tuple[float, MetricUnit]] = {
        name: (getattr(usage, field), MetricUnit.Count) for name, field in TOKENS.items()
    }
    if metrics.estimated_cost_usd is not None:
        spend[ESTIMATED_COST] = (metrics.estimated_cost_usd, MetricUnit.NoUnit)
    else:
        spend[RUNS_WITHOUT_PRICE] = (1, MetricUnit.Count)
    publish({**outcome, **spend}, environment=environment)
    publish(outcome, environment=environment, assistant=metric_name(run.assistant))
    publish(spend, environment=environment, assistant=run.assistant, model=run.model)
