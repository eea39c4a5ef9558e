"""Every ending of a run is accounted for once: the EMF metrics Powertools prints, the metrics stored on the
run, and the user's daily usage counters (moto DynamoDB, a fake engine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from threadrunner import clock
from threadrunner.engines.base import UpstreamRun, UpstreamToolCall
from threadrunner.models.records import RunError, RunRecord, Usage
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, StepInput
from threadrunner.settings import CostSettings, RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.usage import UsageStore
from threadrunner.workflow import check_steps, finish_steps, start_steps, tool_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.emf import by_dimensions, emf_documents
from tests.support.fakes import FakeEngine
from tests.support.runs import started_run

POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=50)
MODEL = "gpt-4.1-mini"  # USD 0.40 input, 0.10 cached input, 1.60 output per 1M tokens (prices.json)
FIRST = Usage(
    prompt_tokens=1000, cached_tokens=400, completion_tokens=200, reasoning_tokens=50, total_tokens=1200
)
SECOND = Usage(prompt_tokens=1500, cached_tokens=1000, completion_tokens=100, total_tokens=1600)
ENV = ("environment", "test")
BY_ASSISTANT = (("assistant", "data-analyst"), ENV)
BY_MODEL = (("assistant", "data-analyst"), ENV, ("model", MODEL))


def _cost(usage: Usage) -> float:
    uncached = usage.prompt_tokens - usage.cached_tokens
    return (uncached * 0.40 + usage.cached_tokens * 0.10 + usage.completion_tokens * 1.60) / 1_000_000


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def ctx(engine: FakeEngine) -> Iterator[StepContext]:
    with moto_tables() as tables:
        runs_table = tables["runs"]
        yield StepContext(
            runs=RunStore(runs_table),
            ledger=ToolCallLedger(runs_table),
            threads=ThreadStore(tables["threads"]),
            engine=lambda name: engine,
            run_settings=RunSettings(environment="test"),
            tool_settings=ToolSettings(),
            tool_functions={"get_table_schema": "arn:schema", "query_database": "arn:query"},
            messages=MessageStore(
                tables["messages"],
                BlobStore(boto3.client("s3", region_name="us-east-1"), "test"),
                inline_bytes=32_768,
            ),
            start_execution=lambda run_id: f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}",
            usage=UsageStore(tables["threads"]),
            cost_settings=CostSettings(),
        )


def _new_run(ctx: StepContext, *, model: str = MODEL) -> RunRecord:
    return started_run(ctx, model=model)


def _step(run: RunRecord, status: str = "in_progress") -> StepInput:
    return StepInput(run_id=run.id, settings=POLL, run=RunProgress(status=status))


def _finish(ctx: StepContext, run: RunRecord, status: str, error: dict[str, Any] | None = None) -> str:
    finish = FinishRunInput.model_validate({"run_id": run.id, "run": {"status": status}, "error": error})
    return finish_steps.finish_run(finish, ctx).status


def _published(capsys: pytest.CaptureFixture[str]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    return by_dimensions(emf_documents(capsys.readouterr().out))


def test_a_completed_run_with_tool_rounds_publishes_its_status_duration_tools_tokens_and_cost(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run that started (RunsStarted and QueueWait by environment and by assistant)
    run = _new_run(ctx)
    capsys.readouterr()
    start_steps.start_run(_step(run, "queued"), ctx)
    started = _published(capsys)
    assert started[(ENV,)]["RunsStarted"] == 1 and started[BY_ASSISTANT]["RunsStarted"] == 1
    assert started[(ENV,)]["QueueWait"] >= 0
    # and two model rounds: the first asks for a tool this assistant does not have (an error output)
    call = UpstreamToolCall(call_id="c1", name="no_such_tool", arguments="{}")
    engine.polls = [UpstreamRun(status="completed", tool_calls=[call], usage=FIRST)]
    assert check_steps.check_run(_step(run), ctx).status == "requires_action"
    tool_steps.submit_tool_outputs(_step(run), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="North leads.", usage=SECOND)]
    assert check_steps.check_run(_step(run), ctx).status == "completed"
    finish_steps.collect_outputs(_step(run), ctx)
    capsys.readouterr()

    # When Finish run ends it
    assert _finish(ctx, run, "completed") == "completed"

    # Then the metrics go out once per dimension set, tokens and cost with the model
    published = _published(capsys)
    total = FIRST + SECOND
    assert set(published) == {(ENV,), BY_ASSISTANT, BY_MODEL}
    for dimensions in ((ENV,), BY_ASSISTANT):
        assert published[dimensions]["RunsCompleted"] == 1
        assert published[dimensions]["ToolCalls"] == 1 and published[dimensions]["ToolErrors"] == 1
        assert published[dimensions]["RunDuration"] >= 0
    for dimensions in ((ENV,), BY_MODEL):
        assert published[dimensions]["PromptTokens"] == 2500
        assert published[dimensions]["CachedTokens"] == 1400
        assert published[dimensions]["CompletionTokens"] == 300
        assert published[dimensions]["ReasoningTokens"] == 50
        assert published[dimensions]["EstimatedCost"] == pytest.approx(_cost(FIRST) + _cost(SECOND))
    assert "RunsFailed" not in published[(ENV,)] and "RunsWithoutPrice" not in published[(ENV,)]
    # and the run carries its usage and metrics
    stored = ctx.runs.get(run.id)
    assert stored.usage == total
    assert stored.metrics is not None
    assert stored.metrics.status == "completed" and stored.metrics.error is None
    assert stored.metrics.tool_calls == 1 and stored.metrics.tool_errors == 1
    assert stored.metrics.estimated_cost_usd == pytest.approx(_cost(total))
    assert stored.metrics.duration_seconds is not None and stored.metrics.queue_wait_seconds is not None
    # and the user's day counts it
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens, day.cached_tokens) == (1, 2800, 1400)
    assert day.cost_usd == pytest.approx(_cost(total))


def test_a_retried_finish_run_counts_nothing_twice(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="ok", usage=FIRST)]
    check_steps.check_run(_step(run), ctx)
    _finish(ctx, run, "completed")
    capsys.readouterr()

    # When Step Functions runs Finish run again
    assert _finish(ctx, run, "completed") == "completed"

    # Then nothing is published or counted a second time
    assert emf_documents(capsys.readouterr().out) == []
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, FIRST.total_tokens)


def test_a_failed_run_publishes_runs_failed_with_its_usage_and_error(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    failure = RunError(code="server_error", message="the model crashed")
    engine.polls = [UpstreamRun(status="failed", error=failure, usage=FIRST)]
    assert check_steps.check_run(_step(run), ctx).status == "failed"
    capsys.readouterr()

    assert _finish(ctx, run, "failed") == "failed"

    published = _published(capsys)
    assert published[(ENV,)]["RunsFailed"] == 1 and published[BY_ASSISTANT]["RunsFailed"] == 1
    assert published[BY_MODEL]["PromptTokens"] == FIRST.prompt_tokens
    assert published[BY_MODEL]["EstimatedCost"] == pytest.approx(_cost(FIRST))
    metrics = ctx.runs.get(run.id).metrics
    assert metrics is not None and metrics.status == "failed" and metrics.error == "server_error"


def test_a_timed_out_run_publishes_runs_timed_out(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    engine.polls = [UpstreamRun(status="in_progress")]
    ctx.runs.update(run.id, deadline_at=clock.now() - timedelta(seconds=1))
    assert check_steps.check_run(_step(run), ctx).status == "timed_out"
    check_steps.cancel_run(_step(run, "timed_out"), ctx)
    capsys.readouterr()

    assert _finish(ctx, run, "timed_out") == "timed_out"

    published = _published(capsys)
    assert published[(ENV,)]["RunsTimedOut"] == 1 and published[BY_ASSISTANT]["RunsTimedOut"] == 1
    assert published[BY_MODEL]["PromptTokens"] == 0 and published[BY_MODEL]["EstimatedCost"] == 0
    metrics = ctx.runs.get(run.id).metrics
    assert metrics is not None and metrics.status == "timed_out" and metrics.error == "timed_out"


def test_a_cancelled_run_publishes_runs_cancelled(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    ctx.runs.request_cancel(run.id)
    assert check_steps.check_run(_step(run), ctx).status == "cancelled"
    capsys.readouterr()

    assert _finish(ctx, run, "cancelled") == "cancelled"

    published = _published(capsys)
    assert published[(ENV,)]["RunsCancelled"] == 1 and published[BY_ASSISTANT]["RunsCancelled"] == 1
    assert ctx.runs.get(run.id).metrics.status == "cancelled"  # type: ignore[union-attr]


def test_a_crashed_step_is_published_as_a_failed_run_with_the_usage_so_far(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    ctx.runs.record_usage(run.id, "resp_1", FIRST)
    capsys.readouterr()
    cause = json.dumps({"errorType": "UpstreamUnavailable", "errorMessage": "502 from upstream"})

    status = _finish(ctx, run, "in_progress", error={"Error": "UpstreamUnavailable", "Cause": cause})

    assert status == "failed"
    published = _published(capsys)
    assert published[(ENV,)]["RunsFailed"] == 1
    assert published[BY_MODEL]["CompletionTokens"] == FIRST.completion_tokens
    metrics = ctx.runs.get(run.id).metrics
    assert metrics is not None and metrics.error == "UpstreamUnavailable"
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert day.runs == 1 and day.total_tokens == FIRST.total_tokens


def test_a_model_without_a_price_has_no_cost_and_a_warning_metric(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _new_run(ctx, model="our-own-llm")
    start_steps.start_run(_step(run, "queued"), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="ok", usage=FIRST)]
    check_steps.check_run(_step(run), ctx)
    capsys.readouterr()

    assert _finish(ctx, run, "completed") == "completed"

    published = _published(capsys)
    by_model = (("assistant", "data-analyst"), ENV, ("model", "our-own-llm"))
    assert published[by_model]["RunsWithoutPrice"] == 1 and "EstimatedCost" not in published[by_model]
    assert ctx.runs.get(run.id).metrics.estimated_cost_usd is None  # type: ignore[union-attr]
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.unpriced_runs, day.cost_usd, day.total_tokens) == (1, 1, 0, FIRST.total_tokens)


def test_deleting_the_thread_mid_run_does_not_get_around_the_usage_count(
    ctx: StepContext, engine: FakeEngine
) -> None:
    # Given a run that spent tokens, on a thread its user is deleting (which cancels the run)
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    ctx.runs.record_usage(run.id, "resp_1", FIRST)
    ctx.threads.mark_deleting(ctx.threads.get("alice", run.thread_id))

    _finish(ctx, run, "cancelled")

    # Then its tokens still count on the user's day (budgets see them)
    assert ctx.runs.get(run.id).metrics is not None
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, FIRST.total_tokens)


def test_a_queued_run_cancelled_while_it_waited_is_accounted_for_when_its_turn_comes(
    ctx: StepContext, engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an active run and, behind it, a queued run whose user cancelled it
    active = _new_run(ctx)
    thread = ctx.threads.get("alice", active.thread_id)
    now = clock.now()
    waiting = active.model_copy(update={"id": clock.new_id("run"), "created_at": now})
    ctx.runs.create(waiting)
    assert ctx.threads.enqueue(thread, waiting.id) == 1
    ctx.runs.request_cancel(waiting.id)
    start_steps.start_run(_step(active, "queued"), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="ok", usage=FIRST)]
    check_steps.check_run(_step(active), ctx)
    capsys.readouterr()

    # When the active run finishes and hands the thread on
    _finish(ctx, active, "completed")

    # Then the queued run ends cancelled, with its metrics, and is published as such
    ended = ctx.runs.get(waiting.id)
    assert ended.status == "cancelled" and ended.metrics is not None and ended.metrics.status == "cancelled"
    assert ended.metrics.duration_seconds is None  # it never started
    published = emf_documents(capsys.readouterr().out)
    assert (
        sum(
            d.get("RunsCancelled", [0])[0]
            for d in published
            if d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["environment"]]
        )
        == 1
    )
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (2, FIRST.total_tokens)


class ConflictsFirst:
    """A client's ``transact_write_items`` whose first ``times`` calls DynamoDB cancels because another
    transaction held one of the items (the usage day of a user whose two runs end at once)."""

    def __init__(self, transact: Any, times: int = 1) -> None:
        self._transact = transact
        self.left = times
        self.calls = 0

    def __call__(self, **request: Any) -> Any:
        if not any("Update" in item for item in request["TransactItems"]):
            return self._transact(**request)  # not the ending: the run's event log (Puts only)
        self.calls += 1
        if self.left:
            self.left -= 1
            reasons = [
                "None" if n == 0 else "TransactionConflict" for n in range(len(request["TransactItems"]))
            ]
            message = (
                "Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(reasons)}]"
            )
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": message},
                    "CancellationReasons": [{"Code": reason} for reason in reasons],
                },
                "TransactWriteItems",
            )
        return self._transact(**request)


def test_a_run_whose_ending_conflicts_with_another_on_the_usage_day_still_ends_counted(
    ctx: StepContext, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that spent tokens, whose ending meets another run of the same user ending at that moment:
    # DynamoDB cancels its transaction once, for a conflict on the usage day (not for its condition)
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="North leads.", usage=FIRST)]
    check_steps.check_run(_step(run), ctx)
    finish_steps.collect_outputs(_step(run), ctx)
    client = ctx.runs._table.meta.client
    conflicts = ConflictsFirst(client.transact_write_items)
    monkeypatch.setattr(client, "transact_write_items", conflicts)

    # When Finish run ends it
    status = _finish(ctx, run, "completed")

    # Then the transaction is made again and the run ends, with its metrics and usage counted once
    assert conflicts.calls == 2
    assert status == "completed"
    ended = ctx.runs.get(run.id)
    assert ended.status == "completed" and ended.metrics is not None
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, FIRST.total_tokens)


def test_a_run_whose_ending_keeps_conflicting_fails_the_step_so_the_workflow_tries_again(
    ctx: StepContext, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run whose ending transaction conflicts on every attempt of this Finish run
    run = _new_run(ctx)
    start_steps.start_run(_step(run, "queued"), ctx)
    engine.polls = [UpstreamRun(status="completed", answer="ok", usage=FIRST)]
    check_steps.check_run(_step(run), ctx)
    client = ctx.runs._table.meta.client
    conflicts = ConflictsFirst(client.transact_write_items, times=1000)
    monkeypatch.setattr(client, "transact_write_items", conflicts)

    # When Finish run ends it, it fails (Step Functions retries it) instead of reading "ended already"
    with pytest.raises(ClientError):
        _finish(ctx, run, "completed")
    assert 1 < conflicts.calls < 10  # a bounded number of attempts
    assert ctx.runs.get(run.id).status == "in_progress"

    # and the retry, once the conflict has passed, ends it counted once
    conflicts.left = 0
    assert _finish(ctx, run, "completed") == "completed"
    day = ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, FIRST.total_tokens)
