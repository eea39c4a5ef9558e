"""A tool call whose Lambda died gets an error output from Submit tool outputs, exactly one output per call
in the ledger whatever order the crash record and a late real output arrive in (moto DynamoDB, a fake
engine; the workflow side is tests/e2e/test_tools_in_runs.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from threadrunner import clock
from threadrunner.engines.base import ToolOutput, UpstreamRun, UpstreamToolCall
from threadrunner.models.records import RunRecord, ToolCallRecord
from threadrunner.models.workflow import PollSettings, RunProgress, RunToolInput, StepInput
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import check_steps, start_steps, tool_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import started_run

POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=50)
SCHEMA = UpstreamToolCall(call_id="c_schema", name="get_table_schema", arguments='{"table": "sales"}')
COUNT = UpstreamToolCall(call_id="c_count", name="query_database", arguments='{"query": "SELECT 1 AS n"}')


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


def step(run: RunRecord, progress: RunProgress | None = None) -> StepInput:
    return StepInput(run_id=run.id, settings=POLL, run=progress or RunProgress(status="queued"))


def asking_for_tools(ctx: StepContext, engine: FakeEngine) -> tuple[RunRecord, RunProgress]:
    """A started run whose model asked for the schema and a count."""
    run = started_run(ctx, model="m")
    start_steps.start_run(step(run), ctx)
    engine.polls = [UpstreamRun(status="completed", tool_calls=[SCHEMA, COUNT])]
    return run, check_steps.check_run(step(run), ctx)


def run_tool(ctx: StepContext, run: RunRecord, call: UpstreamToolCall) -> bool:
    """The tool's own Lambda, once; returns whether its output is an error."""
    return tool_steps.tool_runner(call.name)(
        RunToolInput(run_id=run.id, call_id=call.call_id, name=call.name), ctx
    ).is_error


def submitted(engine: FakeEngine) -> dict[str, Any]:
    """call id -> the output handed to the model in the last submit (parsed JSON)."""
    kind, outputs = engine.creates[-1]
    assert kind == "submit"
    return {output.call_id: json.loads(output.output) for output in outputs}  # type: ignore[attr-defined]


def test_a_call_whose_lambda_died_mid_tool_is_answered_with_an_error_and_the_other_is_not(
    ctx: StepContext, engine: FakeEngine
) -> None:
    # Given a round of two calls: the count ran, the schema tool's Lambda died after it started (the
    # workflow's Catch ended its Map item without an output)
    run, progress = asking_for_tools(ctx, engine)
    assert run_tool(ctx, run, COUNT) is False
    ctx.ledger.start_attempt(run.id, SCHEMA.call_id, clock.now().isoformat())
    # When Submit tool outputs runs
    tool_steps.submit_tool_outputs(step(run, progress), ctx)
    # Then the model got the count, and an error saying the schema tool died
    outputs = submitted(engine)
    assert outputs[COUNT.call_id]["rows"] == [[1]]
    assert outputs[SCHEMA.call_id] == {
        "error": "the tool get_table_schema stopped without an output after 1 attempt(s) "
        "(its Lambda timed out, ran out of memory or crashed)"
    }
    stored = ctx.ledger.get(run.id, SCHEMA.call_id)
    assert stored.is_error and stored.finished_at is not None
    # and the run's summary counts it as a tool error
    summary = {call.call_id: call for call in ctx.runs.get(run.id).tool_calls}
    assert summary[SCHEMA.call_id].is_error and not summary[COUNT.call_id].is_error


def test_a_late_real_output_loses_to_the_recorded_crash(ctx: StepContext, engine: FakeEngine) -> None:
    # Given a crash recorded by Submit tool outputs
    run, progress = asking_for_tools(ctx, engine)
    run_tool(ctx, run, COUNT)
    tool_steps.submit_tool_outputs(step(run, progress), ctx)
    crash = ctx.ledger.get(run.id, SCHEMA.call_id)
    # When the tool's Lambda still gets to store an output (an invocation the service ran after all)
    late = crash.model_copy(update={"output": '{"columns": []}', "is_error": False})
    kept = ctx.ledger.save_output(late)
    # or is invoked again
    assert run_tool(ctx, run, SCHEMA) is True
    # Then the ledger keeps the crash, which is what the model was given
    assert kept == crash == ctx.ledger.get(run.id, SCHEMA.call_id)
    assert json.loads(crash.output or "") == submitted(engine)[SCHEMA.call_id]


def test_a_real_output_stored_before_the_lambda_died_is_what_the_model_gets(
    ctx: StepContext, engine: FakeEngine
) -> None:
    # Given both tools ran and stored their outputs, and then the schema Lambda died before returning
    run, progress = asking_for_tools(ctx, engine)
    run_tool(ctx, run, COUNT)
    run_tool(ctx, run, SCHEMA)
    stored = ctx.ledger.get(run.id, SCHEMA.call_id)
    # When Submit tool outputs runs (the Map item ended through its Catch)
    tool_steps.submit_tool_outputs(step(run, progress), ctx)
    # Then it submits the real output, and records no crash over it
    assert submitted(engine)[SCHEMA.call_id] == json.loads(stored.output or "")
    assert ctx.ledger.get(run.id, SCHEMA.call_id) == stored


def test_a_re_executed_submit_hands_over_nothing_twice(ctx: StepContext, engine: FakeEngine) -> None:
    run, progress = asking_for_tools(ctx, engine)
    tool_steps.submit_tool_outputs(step(run, progress), ctx)  # both crashed (their Lambdas never started)
    first: list[ToolOutput] = engine.creates[-1][1]  # type: ignore[assignment]
    tool_steps.submit_tool_outputs(step(run, progress), ctx)
    assert [kind for kind, _ in engine.creates] == ["start", "submit"]
    assert {output.call_id for output in first} == {SCHEMA.call_id, COUNT.call_id}
    calls: list[ToolCallRecord] = ctx.ledger.list(run.id)
    assert all(call.is_error and "could not be started" in (call.output or "") for call in calls)


def test_submit_still_refuses_a_round_without_tool_calls(ctx: StepContext, engine: FakeEngine) -> None:
    run = started_run(ctx, model="m")
    start_steps.start_run(step(run), ctx)
    with pytest.raises(tool_steps.ToolOutputsMissing):
        tool_steps.submit_tool_outputs(step(run, RunProgress(status="requires_action")), ctx)
