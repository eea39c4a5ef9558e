"""The workflow steps against moto DynamoDB and a fake engine: bookkeeping, at-most-once, the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from threadrunner import clock
from threadrunner.engines.base import UpstreamRun, UpstreamToolCall
from threadrunner.errors import UpstreamOutcomeUnknown, UpstreamRateLimited
from threadrunner.models.records import RunRecord, Usage
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, RunToolInput, StepInput
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import check_steps, finish_steps, start_steps, tool_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import started_run

POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=50)


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
            run_settings=RunSettings(),
            tool_settings=ToolSettings(),
            tool_functions={"get_table_schema": "arn:schema", "query_database": "arn:query"},
            messages=MessageStore(
                tables["messages"],
                BlobStore(boto3.client("s3", region_name="us-east-1"), "test"),
                inline_bytes=32_768,
            ),
            start_execution=lambda run_id: f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}",
        )


def _new_run(ctx: StepContext) -> RunRecord:
    return started_run(ctx, model="m")


def _step(run: RunRecord, progress: RunProgress | None = None) -> StepInput:
    return StepInput(run_id=run.id, settings=POLL, run=progress or RunProgress(status="queued"))


def test_start_run_creates_one_conversation_and_one_response_even_when_re_executed(
    ctx: StepContext, engine: FakeEngine
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run), ctx)
    start_steps.start_run(_step(run), ctx)  # Step Functions may run a step twice
    assert engine.threads_created == ["conv_1"]
    assert [kind for kind, _ in engine.creates] == ["start"]
    stored = ctx.runs.get(run.id)
    assert stored.response_ids == ["resp_1"] and stored.status == "in_progress"
    assert stored.upstream_thread_id == "conv_1"


def test_a_create_with_an_unknown_outcome_is_never_repeated(ctx: StepContext, engine: FakeEngine) -> None:
    run = _new_run(ctx)
    engine.fail_next_create = UpstreamOutcomeUnknown("timed out")
    with pytest.raises(UpstreamOutcomeUnknown):
        start_steps.start_run(_step(run), ctx)
    with pytest.raises(UpstreamOutcomeUnknown):
        start_steps.start_run(_step(run), ctx)
    assert engine.creates == []


def test_a_create_the_upstream_refused_can_be_retried(ctx: StepContext, engine: FakeEngine) -> None:
    run = _new_run(ctx)
    engine.fail_next_create = UpstreamRateLimited("slow down")
    with pytest.raises(UpstreamRateLimited):
        start_steps.start_run(_step(run), ctx)
    start_steps.start_run(_step(run), ctx)
    assert ctx.runs.get(run.id).response_ids == ["resp_1"]


def test_tool_round_trip_uses_the_ledger_and_counts_usage_once(ctx: StepContext, engine: FakeEngine) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run), ctx)
    calls = [
        UpstreamToolCall(call_id="call_a", name="get_table_schema", arguments='{"table": "sales"}'),
        UpstreamToolCall(call_id="call_b", name="no_such_tool", arguments="{}"),
    ]
    engine.polls = [
        UpstreamRun(status="completed", tool_calls=calls, usage=Usage(prompt_tokens=10, total_tokens=10))
    ]
    progress = check_steps.check_run(_step(run), ctx)
    again = check_steps.check_run(_step(run), ctx)  # re-polling the same response records nothing twice
    assert progress.status == again.status == "requires_action"
    assert ctx.runs.get(run.id).usage.total_tokens == 10

    # Then only the known tool is routed to its Lambda; the unknown one is answered with an error already
    assert [(c.call_id, c.function) for c in progress.tool_calls] == [("call_a", "arn:schema")]
    run_schema_tool = tool_steps.tool_runner("get_table_schema")
    run_schema_tool(RunToolInput(run_id=run.id, call_id="call_a", name="get_table_schema"), ctx)
    # a retried Run tool reuses the stored output instead of running the tool again
    run_schema_tool(RunToolInput(run_id=run.id, call_id="call_a", name="get_table_schema"), ctx)
    ledger = {call.call_id: call for call in ctx.ledger.list(run.id)}
    assert ledger["call_a"].attempts == 1
    assert json.loads(ledger["call_a"].output or "")["table"] == "sales"
    assert ledger["call_b"].is_error and "unknown tool" in json.loads(ledger["call_b"].output or "")["error"]

    tool_steps.submit_tool_outputs(_step(run, progress), ctx)
    kind, outputs = engine.creates[-1]
    assert kind == "submit" and [o.call_id for o in outputs] == ["call_a", "call_b"]  # type: ignore[attr-defined]
    assert ctx.runs.get(run.id).response_ids == ["resp_1", "resp_2"]


def test_submit_answers_a_call_whose_tool_never_stored_an_output_with_an_error(
    ctx: StepContext, engine: FakeEngine
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run), ctx)
    engine.polls = [
        UpstreamRun(
            status="completed",
            tool_calls=[
                UpstreamToolCall(call_id="c1", name="query_database", arguments='{"query": "SELECT 1"}')
            ],
        )
    ]
    progress = check_steps.check_run(_step(run), ctx)
    # (its tool's Lambda died before running it: Run tools caught that, workflow/tool_crashes.py)
    tool_steps.submit_tool_outputs(_step(run, progress), ctx)
    kind, outputs = engine.creates[-1]
    assert kind == "submit" and [o.call_id for o in outputs] == ["c1"]  # type: ignore[attr-defined]
    error = json.loads(outputs[0].output)["error"]  # type: ignore[index]
    assert error == "the tool query_database could not be started (its Lambda failed before running it)"
    assert ctx.ledger.get(run.id, "c1").is_error


def test_check_run_times_out_past_the_deadline_or_the_poll_limit(
    ctx: StepContext, engine: FakeEngine
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run), ctx)
    engine.polls = [UpstreamRun(status="in_progress", poll_after_ms=1500)]
    assert (
        check_steps.check_run(_step(run, RunProgress(status="in_progress", poll_count=1)), ctx).status
        == "in_progress"
    )
    limited = check_steps.check_run(
        _step(run, RunProgress(status="in_progress", poll_count=POLL.max_polls - 1)), ctx
    )
    assert limited.status == "timed_out"
    ctx.runs.update(run.id, deadline_at=clock.now() - timedelta(seconds=1))
    assert (
        check_steps.check_run(_step(run, RunProgress(status="in_progress", poll_count=1)), ctx).status
        == "timed_out"
    )


def test_finish_run_records_a_step_failure_and_releases_the_thread(ctx: StepContext) -> None:
    run = _new_run(ctx)
    cause = json.dumps({"errorType": "UpstreamQuotaExceeded", "errorMessage": "no quota left"})
    finished = finish_steps.finish_run(
        FinishRunInput.model_validate(
            {
                "run_id": run.id,
                "run": {"status": "in_progress"},
                "error": {"Error": "UpstreamQuotaExceeded", "Cause": cause},
            }
        ),
        ctx,
    )
    assert finished.status == "failed"
    stored = ctx.runs.get(run.id)
    assert stored.error is not None and stored.error.code == "UpstreamQuotaExceeded"
    assert stored.error.message == "no quota left"
    assert ctx.threads.get("alice", run.thread_id).active_run_id is None
    # a second Finish run (re-executed) does not overwrite the outcome
    again = finish_steps.finish_run(FinishRunInput(run_id=run.id, run=RunProgress(status="completed")), ctx)
    assert again.status == "failed"


def test_a_tool_lambda_runs_only_its_own_tool_and_gives_up_after_repeated_deaths(
    ctx: StepContext, engine: FakeEngine
) -> None:
    run = _new_run(ctx)
    start_steps.start_run(_step(run), ctx)
    calls = [
        UpstreamToolCall(
            call_id="q1", name="query_database", arguments='{"query": "SELECT COUNT(*) FROM sales"}'
        ),
        UpstreamToolCall(call_id="q2", name="query_database", arguments='{"query": "SELECT 1"}'),
    ]
    engine.polls = [UpstreamRun(status="completed", tool_calls=calls)]
    check_steps.check_run(_step(run), ctx)
    # A call delivered to the wrong tool's Lambda is refused, not run
    wrong = tool_steps.tool_runner("get_table_schema")(
        RunToolInput(run_id=run.id, call_id="q1", name="x"), ctx
    )
    assert wrong.is_error
    assert "reached the get_table_schema tool" in ctx.ledger.get(run.id, "q1").output  # type: ignore[operator]
    # Two earlier attempts that died without an output: the third gives the model an error instead
    ctx.ledger.start_attempt(run.id, "q2", clock.now().isoformat())
    ctx.ledger.start_attempt(run.id, "q2", clock.now().isoformat())
    gave_up = tool_steps.tool_runner("query_database")(
        RunToolInput(run_id=run.id, call_id="q2", name="query_database"), ctx
    )
    assert gave_up.is_error
    assert "did not finish after 2 attempts" in (ctx.ledger.get(run.id, "q2").output or "")
