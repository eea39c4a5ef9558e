"""A run deleted while its workflow goes on (its thread's or its user's deletion): every step that finds its
run gone answers at once, without an error, what takes the workflow to Finish run, and Finish run answers
``deleted`` (run.asl.json ends that execution in the "Run deleted" Succeed state: tests/unit/workflow). Over
moto with a fake engine; the deletion is the real cleanup (threadrunner.cleanup)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from threadrunner import cleanup
from threadrunner.engines.base import UpstreamRun, UpstreamToolCall
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.models.records import RunRecord
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, RunToolInput, StepInput
from threadrunner.settings import CleanupSettings, RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.cleanups import CleanupLedger
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import check_steps, finish_steps, start_steps, tool_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import started_run

BUCKET = "deleted-runs"
POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=10)
SCHEMA_CALL = UpstreamToolCall(call_id="c1", name="get_table_schema", arguments="{}")


@dataclass
class DeletingEngine(FakeEngine):
    """A fake engine whose poll can run something first (the deletion landing while Check run polls)."""

    before_poll: Callable[[], None] | None = None

    def poll(self, run: RunRecord) -> UpstreamRun:
        if self.before_poll is not None:
            self.before_poll()
        return super().poll(run)


@dataclass
class World:
    ctx: StepContext
    engine: DeletingEngine
    cleanup: cleanup.CleanupContext

    def delete_thread_of(self, run: RunRecord) -> None:
        """What DELETE /v1/threads/{id}?force=true and the delete_threads Lambda do."""
        thread = self.ctx.threads.get(run.user_id, run.thread_id)
        self.ctx.runs.request_cancel(run.id)
        self.cleanup.cleanups.record(cleanup.pending_for(thread))
        self.ctx.threads.mark_deleting(thread)
        cleanup.delete_threads(
            DeleteThreadsRequest(user_id=run.user_id, thread_ids=[thread.id]), self.cleanup
        )
        assert self.ctx.runs.find(run.id) is None


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as tables:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        blobs = BlobStore(s3, BUCKET)
        engine = DeletingEngine(polls=[UpstreamRun(status="completed", tool_calls=[SCHEMA_CALL])])
        runs, threads = RunStore(tables["runs"]), ThreadStore(tables["threads"])
        messages = MessageStore(tables["messages"], blobs, inline_bytes=32_768)
        ctx = StepContext(
            runs=runs,
            ledger=ToolCallLedger(tables["runs"]),
            threads=threads,
            engine=lambda name: engine,
            run_settings=RunSettings(),
            tool_settings=ToolSettings(),
            tool_functions={"get_table_schema": "arn:schema"},
            messages=messages,
            start_execution=lambda run_id: f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}",
        )
        cleaning = cleanup.CleanupContext(
            threads=threads,
            runs=runs,
            messages=messages,
            cleanups=CleanupLedger(tables["threads"]),
            blobs=blobs,
            engine=lambda name: engine,
            settings=CleanupSettings(),
        )
        yield World(ctx=ctx, engine=engine, cleanup=cleaning)


def _step(run: RunRecord, progress: RunProgress) -> StepInput:
    return StepInput(run_id=run.id, settings=POLL, run=progress)


def _finish(run: RunRecord, progress: RunProgress, error: dict[str, str] | None = None) -> FinishRunInput:
    return FinishRunInput.model_validate(
        {"run_id": run.id, "run": progress.model_dump(mode="json"), "error": error}
    )


def test_every_step_of_a_deleted_run_answers_quietly_and_finish_run_says_deleted(world: World) -> None:
    # Given a run that started and waits for its tool call
    ctx = world.ctx
    run = started_run(ctx, log_message=True)
    progress = start_steps.start_run(_step(run, RunProgress(status="queued")), ctx)
    progress = check_steps.check_run(_step(run, progress), ctx)
    assert progress.status == "requires_action" and progress.tool_calls
    # When its thread is deleted (runs, log, thread, upstream conversation)
    world.delete_thread_of(run)

    # Then each step that runs next answers without an error what leads to Finish run
    call = progress.tool_calls[0]
    tool = tool_steps.tool_runner(call.name)(
        RunToolInput(run_id=run.id, call_id=call.call_id, name=call.name), ctx
    )
    assert (tool.call_id, tool.is_error) == (call.call_id, True)
    for step in (
        start_steps.start_run,
        check_steps.check_run,
        tool_steps.submit_tool_outputs,
        finish_steps.collect_outputs,
        check_steps.cancel_run,
    ):
        answered = step(_step(run, progress), ctx)
        assert (answered.status, answered.tool_calls) == ("cancelled", []), step.__name__
        assert answered.poll_count == progress.poll_count
    # and Finish run, reached by a status or by a failed step's Catch, says the run is deleted
    failure = {"Error": "UpstreamUnavailable", "Cause": "the upstream did not answer"}
    for finish in (_finish(run, progress), _finish(run, progress, failure)):
        assert finish_steps.finish_run(finish, ctx).status == "deleted"
    # and nothing of the run was written back
    assert ctx.runs.find(run.id) is None and ctx.ledger.list(run.id) == []
    assert ctx.messages.page(run.thread_id, limit=10) == ([], False)


def test_a_run_deleted_while_a_step_works_on_it_ends_the_step_quietly(world: World) -> None:
    # Given a started run whose thread is deleted while Check run polls its upstream response
    ctx = world.ctx
    run = started_run(ctx, log_message=True)
    progress = start_steps.start_run(_step(run, RunProgress(status="queued")), ctx)
    world.engine.before_poll = lambda: world.delete_thread_of(run)

    # When Check run goes on to record what the poll said, the run is gone: it answers quietly
    answered = check_steps.check_run(_step(run, progress), ctx)

    assert answered.status == "cancelled"
    assert ctx.runs.find(run.id) is None and ctx.ledger.list(run.id) == []


def test_a_step_failing_for_its_own_reason_still_fails_while_its_run_exists(world: World) -> None:
    # Given a run whose upstream poll fails (the run is not deleted)
    ctx = world.ctx
    run = started_run(ctx, log_message=True)
    progress = start_steps.start_run(_step(run, RunProgress(status="queued")), ctx)

    def fail() -> None:
        raise RuntimeError("the upstream broke")

    world.engine.before_poll = fail
    # Then the step's own error reaches the workflow (its Retry and Catch), as before
    with pytest.raises(RuntimeError, match="the upstream broke"):
        check_steps.check_run(_step(run, progress), ctx)
