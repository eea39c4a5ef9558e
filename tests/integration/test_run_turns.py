"""Whose turn it is, against moto with a fake engine: Finish run hands the thread on and starts the next
run once, queued runs cancelled while waiting are skipped, Check run honours a cancel, and a crashed step
stops the upstream response and still logs what the run did."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest
from threadrunner import turns
from threadrunner.engines.base import UpstreamRun
from threadrunner.models.records import RunRecord, RunStatus, ThreadRecord, ToolCallSummary
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, StepError, StepInput
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import check_steps, finish_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import alices_thread, run_record

TTL_DAYS = 30


@dataclass
class Starter:
    """Records StartExecution calls; like Step Functions, a name is started once."""

    started: list[str] = field(default_factory=list)

    def __call__(self, run_id: str) -> str:
        if run_id not in self.started:
            self.started.append(run_id)
        return f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(polls=[UpstreamRun(status="in_progress")])


@pytest.fixture
def starter() -> Starter:
    return Starter()


@pytest.fixture
def ctx(engine: FakeEngine, starter: Starter) -> Iterator[StepContext]:
    with moto_tables() as tables:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="turns")
        yield StepContext(
            runs=RunStore(tables["runs"]),
            ledger=ToolCallLedger(tables["runs"]),
            threads=ThreadStore(tables["threads"]),
            engine=lambda name: engine,
            run_settings=RunSettings(),
            tool_settings=ToolSettings(),
            tool_functions={},
            messages=MessageStore(tables["messages"], BlobStore(s3, "turns"), inline_bytes=1000),
            start_execution=starter,
        )


def _thread(ctx: StepContext) -> ThreadRecord:
    return alices_thread(ctx, purpose="t")


def _run(ctx: StepContext, thread: ThreadRecord, **fields: object) -> RunRecord:
    run = run_record(thread, model="m", message="question", **fields)
    ctx.runs.create(run)
    return run


def _queue(ctx: StepContext, thread: ThreadRecord, count: int) -> list[RunRecord]:
    runs = [_run(ctx, thread) for _ in range(count)]
    ctx.threads.acquire(thread, runs[0].id)
    for run in runs[1:]:
        assert turns.take_turn(ctx.threads, thread, run.id) is not None
    return runs


def _end(ctx: StepContext, run: RunRecord) -> str | None:
    return turns.end_turn(run, ctx.threads, ctx.runs, ctx.start_execution, TTL_DAYS)


def test_each_ending_starts_exactly_the_next_run_once_even_when_repeated(
    ctx: StepContext, starter: Starter
) -> None:
    thread = _thread(ctx)
    first, second, third = _queue(ctx, thread, 3)
    assert _end(ctx, first) == second.id
    # a retried Finish run: the lock has moved on, the successor is started already
    assert _end(ctx, first) is None
    assert starter.started == [second.id]
    assert ctx.runs.get(second.id).execution_arn is not None
    assert _end(ctx, second) == third.id
    assert _end(ctx, third) is None
    assert starter.started == [second.id, third.id]
    assert ctx.threads.get("alice", thread.id).active_run_id is None


def test_a_successor_left_unstarted_by_a_crash_is_started_by_the_retry(
    ctx: StepContext, starter: Starter
) -> None:
    thread = _thread(ctx)
    first, second = _queue(ctx, thread, 2)
    # Given a Finish run that handed the lock over and died before starting the next run
    assert ctx.threads.release("alice", thread.id, first.id, TTL_DAYS) == second.id
    # When it is retried, the successor is started
    assert _end(ctx, first) == second.id
    assert starter.started == [second.id]


def test_queued_runs_cancelled_while_waiting_end_cancelled_and_pass_the_lock_on(
    ctx: StepContext, starter: Starter
) -> None:
    thread = _thread(ctx)
    first, second, third = _queue(ctx, thread, 3)
    ctx.runs.request_cancel(second.id)
    assert _end(ctx, first) == third.id
    assert ctx.runs.get(second.id).status is RunStatus.cancelled
    assert starter.started == [third.id]


def test_take_turn_takes_a_free_lock_and_queues_behind_a_held_one(ctx: StepContext) -> None:
    thread = _thread(ctx)
    assert turns.take_turn(ctx.threads, thread, "run_a") is None
    assert turns.take_turn(ctx.threads, thread, "run_b") == 1
    assert turns.queue_position(ctx.threads.get("alice", thread.id), "run_b") == 1
    assert turns.queue_position(ctx.threads.get("alice", thread.id), "run_z") is None


def test_check_run_cancels_upstream_when_a_cancel_was_requested(ctx: StepContext, engine: FakeEngine) -> None:
    thread = _thread(ctx)
    run = _run(ctx, thread, response_ids=["resp_9"], status=RunStatus.in_progress)
    ctx.runs.request_cancel(run.id)
    settings = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=5)
    progress = check_steps.check_run(
        StepInput(run_id=run.id, settings=settings, run=RunProgress(status="in_progress", poll_count=2)), ctx
    )
    assert (progress.status, progress.poll_count) == ("cancelled", 2)
    assert engine.cancelled == ["resp_9"]
    # flagging again is harmless; once the run has ended it cannot be flagged
    assert ctx.runs.request_cancel(run.id) is True
    ctx.runs.finish(run.id, status=RunStatus.cancelled)
    assert ctx.runs.request_cancel(run.id) is False


def test_finish_run_after_a_crash_stops_upstream_frees_the_thread_and_logs_the_run(
    ctx: StepContext, engine: FakeEngine
) -> None:
    thread = _thread(ctx)
    run = _run(
        ctx,
        thread,
        response_ids=["resp_1", "resp_2"],
        status=RunStatus.in_progress,
        tool_calls=[ToolCallSummary(call_id="c1", name="query_database", arguments="{}", output="[]")],
    )
    ctx.threads.acquire(thread, run.id)
    crashed = FinishRunInput(
        run_id=run.id,
        run=RunProgress(status="in_progress"),
        error=StepError(Error="KeyError", Cause='{"errorMessage": "boom"}'),
    )
    assert finish_steps.finish_run(crashed, ctx).status == "failed"
    assert engine.cancelled == ["resp_2"]  # the current response, which holds the conversation
    assert ctx.threads.get("alice", thread.id).active_run_id is None
    logged, _ = ctx.messages.page(thread.id, limit=10)
    assert [(m.role, m.tool_call.name if m.tool_call else None) for m in logged] == [
        ("tool", "query_database")
    ]


def test_when_a_run_is_seen_ended_its_answer_is_logged_and_the_thread_is_free(
    ctx: StepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that completed with an answer and holds its thread
    thread = _thread(ctx)
    run = _run(ctx, thread, response_ids=["resp_1"], status=RunStatus.in_progress, answer="Forty-two.")
    ctx.threads.acquire(thread, run.id)
    seen_at_the_end: list[tuple[str | None, list[str | None]]] = []
    real_finish = ctx.runs.finish

    def finish_and_look(run_id: str, **fields: object) -> bool:
        logged, _ = ctx.messages.page(thread.id, limit=10)
        seen_at_the_end.append(
            (ctx.threads.get("alice", thread.id).active_run_id, [m.content for m in logged])
        )
        return real_finish(run_id, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(ctx.runs, "finish", finish_and_look)
    # When Finish run ends it
    finish_steps.finish_run(FinishRunInput(run_id=run.id, run=RunProgress(status="completed")), ctx)
    # Then by the time its status is terminal, the thread is free and the answer is in the log
    assert seen_at_the_end == [(None, ["Forty-two."])]
    assert ctx.runs.get(run.id).status is RunStatus.completed
