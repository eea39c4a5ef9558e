"""Finish run's hand-over of the thread cannot be skipped: a write that fails midway fails the step (Step
Functions retries it), and the retry goes on from where the first attempt stopped, doing nothing twice. Over
moto with a fake engine; failures are injected into the thread store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.exceptions import ClientError
from threadrunner import clock
from threadrunner.engines.base import UpstreamRun
from threadrunner.models.records import RunRecord, RunStatus, ThreadRecord
from threadrunner.models.workflow import FinishRunInput, RunProgress
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.usage import UsageStore
from threadrunner.workflow import finish_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import alices_thread, run_record

TTL_DAYS = 30


def _failed_write(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)


class ReleaseFailsOnce(ThreadStore):
    """Giving back the lock of run ``run_id`` fails the first time (DynamoDB answers a 500)."""

    fail_for: str | None = None

    def release(self, user_id: str, thread_id: str, run_id: str, ttl_days: int) -> str | None:
        if run_id == self.fail_for:
            self.fail_for = None
            raise _failed_write("UpdateItem")
        return super().release(user_id, thread_id, run_id, ttl_days)


@dataclass
class Starter:
    """StartExecution: a name is started once, like Step Functions; ``fail`` fails the next call."""

    started: list[str] = field(default_factory=list)
    fail: bool = False

    def __call__(self, run_id: str) -> str:
        if self.fail:
            self.fail = False
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "later"}}, "StartExecution")
        if run_id not in self.started:
            self.started.append(run_id)
        return f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"


@dataclass
class World:
    ctx: StepContext
    threads: ReleaseFailsOnce
    starter: Starter

    def line(self, count: int) -> tuple[ThreadRecord, list[RunRecord]]:
        """A thread whose first run is active (started) and the others queued behind it, in order."""
        thread = alices_thread(self.ctx, purpose=clock.new_id("p"))
        runs = [run_record(thread) for _ in range(count)]
        for run in runs:
            self.ctx.runs.create(run)
        self.ctx.threads.acquire(thread, runs[0].id)
        self.ctx.runs.update(runs[0].id, status=RunStatus.in_progress, execution_arn="arn:first")
        for run in runs[1:]:
            self.ctx.threads.enqueue(thread, run.id)
        return thread, runs

    def finish(self, run: RunRecord) -> str:
        return finish_steps.finish_run(
            FinishRunInput(run_id=run.id, run=RunProgress(status="completed")), self.ctx
        ).status


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as tables:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="hand-over")
        threads = ReleaseFailsOnce(tables["threads"])
        starter = Starter()
        engine = FakeEngine(polls=[UpstreamRun(status="completed", answer="ok")])
        ctx = StepContext(
            runs=RunStore(tables["runs"]),
            ledger=ToolCallLedger(tables["runs"]),
            threads=threads,
            engine=lambda name: engine,
            run_settings=RunSettings(thread_ttl_days=TTL_DAYS),
            tool_settings=ToolSettings(),
            tool_functions={},
            messages=MessageStore(tables["messages"], BlobStore(s3, "hand-over"), inline_bytes=32_768),
            start_execution=starter,
            usage=UsageStore(tables["threads"]),
        )
        yield World(ctx=ctx, threads=threads, starter=starter)


def test_a_failed_release_of_a_cancelled_successor_is_finished_by_the_retry(world: World) -> None:
    # Given an active run, then a queued run its user cancelled, then one still wanted
    thread, (active, cancelled, wanted) = world.line(3)
    world.ctx.runs.request_cancel(cancelled.id)
    # When Finish run ends the cancelled one and then fails to pass its lock on
    world.threads.fail_for = cancelled.id
    with pytest.raises(ClientError):
        world.finish(active)
    assert world.ctx.runs.get(cancelled.id).status is RunStatus.cancelled
    # Then its retry passes the lock on and starts the next run, once; each run ends once
    assert world.finish(active) == "completed"
    assert world.starter.started == [wanted.id]
    assert world.ctx.threads.get("alice", thread.id).active_run_id == wanted.id
    assert world.ctx.runs.get(wanted.id).execution_arn is not None
    day = world.ctx.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert day.runs == 2  # the active one and the cancelled one, counted once each


def test_a_lock_held_by_a_run_that_is_gone_is_passed_on(world: World) -> None:
    # Given a queue whose first run no longer exists (deleted, or never written by an older API)
    thread, (active, gone, wanted) = world.line(3)
    world.ctx.runs.delete(gone.id)
    # When the active run finishes, the lock skips the missing run and goes to the next one
    assert world.finish(active) == "completed"
    assert world.starter.started == [wanted.id]
    assert world.ctx.threads.get("alice", thread.id).active_run_id == wanted.id


def test_a_successor_whose_start_failed_is_started_by_the_retry_once(world: World) -> None:
    # Given a Finish run that hands the thread over, then cannot start the next run
    thread, (active, waiting) = world.line(2)
    world.starter.fail = True
    with pytest.raises(ClientError):
        world.finish(active)
    assert world.ctx.threads.get("alice", thread.id).active_run_id == waiting.id
    # Then the retry starts it, and ends the run it was finishing
    assert world.finish(active) == "completed"
    assert world.starter.started == [waiting.id]
    assert world.ctx.runs.get(active.id).status is RunStatus.completed


def test_a_failed_release_of_the_finishing_run_fails_the_step_and_the_retry_frees_the_thread(
    world: World,
) -> None:
    thread, (active,) = world.line(1)
    world.threads.fail_for = active.id
    with pytest.raises(ClientError):
        world.finish(active)
    # the status comes last: not ended while its thread is still held
    assert world.ctx.runs.get(active.id).status is RunStatus.in_progress
    assert world.finish(active) == "completed"
    assert world.ctx.threads.get("alice", thread.id).active_run_id is None
