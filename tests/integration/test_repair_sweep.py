"""The sweep's repair (threadrunner.run_repair.sweep, run by functions/sweep_threads through
threadrunner.cleanup): what no status-change event reached is repaired within one sweep, with the
reconciler's code. (moto DynamoDB and Step Functions, whose executions stay RUNNING until stopped.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from threadrunner import cleanup, clock, run_repair
from threadrunner.models.records import RunStatus
from threadrunner.models.workflow import FinishRunInput
from threadrunner.settings import CleanupSettings
from threadrunner.stores.cleanups import CleanupLedger
from threadrunner.stores.threads import thread_key
from threadrunner.workflow import finish_steps

from tests.support.emf import dimensions_of, emf_documents, metric_names
from tests.support.repairs import (
    RepairWorld,
    change_of,
    queued_behind,
    repair_world,
    run_mid_tool_round,
    status_change,
)
from tests.support.runs import alices_thread, run_record

ENV = ("environment", "test")


@pytest.fixture
def world() -> Iterator[RepairWorld]:
    yield from repair_world()


def _repairs_by_cause(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """RunsRepaired by its cause dimension, summed over what was published since the last read."""
    counts: dict[str, float] = {}
    for document in emf_documents(capsys.readouterr().out):
        cause = dimensions_of(document).get("cause")
        if cause is not None and "RunsRepaired" in metric_names(document):
            counts[cause] = counts.get(cause, 0) + sum(document["RunsRepaired"])
    return counts


def _held_by(world: RepairWorld, purpose: str, status: RunStatus) -> tuple[str, str]:
    """A thread whose lock is held by a run left in ``status`` with no execution; (thread id, run id)."""
    ctx = world.steps
    thread = alices_thread(ctx, purpose=purpose)
    run = run_record(thread)
    ctx.threads.acquire(thread, run.id)
    ctx.runs.create(run)
    if status.is_terminal:
        ctx.runs.finish(run.id, status=status, completed_at=clock.now())
    else:
        ctx.runs.update(run.id, status=status, started_at=clock.now())
    return thread.id, run.id


def test_an_aborted_execution_whose_event_never_came_is_repaired_by_the_sweep(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run mid tool round with a run queued behind it, and its execution stopped with no event
    run, calls = run_mid_tool_round(world)
    successor = queued_behind(world, run)
    world.stop(run.id)
    capsys.readouterr()

    # When the sweep runs
    report = run_repair.sweep(world.repairs)

    # Then the run has ended as the reconciler would have ended it, and the queued run is started
    assert report.repaired == 1 and report.failed == 0
    ended = world.steps.runs.get(run.id)
    assert ended.status is RunStatus.failed and ended.error.code == "execution_aborted"  # type: ignore[union-attr]
    assert sorted(world.engine.closed) == sorted(calls)
    assert world.steps.threads.get("alice", run.thread_id).active_run_id == successor.id
    assert world.execution_status(successor.id) == "RUNNING"
    assert _repairs_by_cause(capsys) == {"execution_aborted": 1}
    # and the next sweep finds nothing left to do
    assert run_repair.sweep(world.repairs).repaired == 0


def test_the_sweep_frees_threads_held_by_ended_missing_and_executionless_runs(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a thread still held by a run that has ended (its hand-over never happened)
    ended_thread, _ = _held_by(world, "ended", RunStatus.completed)
    # and one held by a run in progress that has no execution at all
    started_thread, started = _held_by(world, "no-execution", RunStatus.in_progress)
    # and one held by a run that does not exist (deleted, or never written)
    missing_thread = alices_thread(world.steps, purpose="missing")
    world.steps.threads.acquire(missing_thread, clock.new_id("run"))
    capsys.readouterr()

    report = run_repair.sweep(world.repairs)

    # Then each thread is free, and the run without an execution has ended failed
    assert report.repaired == 3 and report.failed == 0
    for thread_id in (ended_thread, started_thread, missing_thread.id):
        assert world.steps.threads.get("alice", thread_id).active_run_id is None
    assert world.steps.runs.get(started).error.code == "execution_missing"  # type: ignore[union-attr]
    assert _repairs_by_cause(capsys) == {
        "lock_of_ended_run": 1,
        "execution_missing": 1,
        "lock_of_missing_run": 1,
    }


def test_the_sweep_leaves_runs_and_locks_younger_than_the_grace_period_alone(world: RepairWorld) -> None:
    # Given a run between its lock and its StartExecution, a lock whose run is being written, and a stopped
    # execution the reconciler may be repairing right now
    _, unstarted = _held_by(world, "starting", RunStatus.queued)
    writing = alices_thread(world.steps, purpose="writing")
    world.steps.threads.acquire(writing, clock.new_id("run"))
    run, _ = run_mid_tool_round(world)
    world.stop(run.id)

    # When the sweep runs within the grace period
    report = run_repair.sweep(replace(world.repairs, grace_seconds=300))

    # Then it changes nothing
    assert report.repaired == 0
    assert world.steps.runs.get(unstarted).status is RunStatus.queued
    assert world.steps.threads.get("alice", writing.id).active_run_id is not None
    assert world.steps.runs.get(run.id).status is RunStatus.requires_action


def test_a_successor_whose_start_keeps_failing_is_repaired_by_the_sweep(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run with two runs queued behind it, and Step Functions refusing StartExecution
    run, _ = run_mid_tool_round(world)
    second, third = queued_behind(world, run), queued_behind(world, run)
    world.starter.failing = True
    # whose Finish run fails on the hand-over until the workflow gives up ("Run could not be recorded")
    finish = FinishRunInput.model_validate({"run_id": run.id, "run": {"status": "completed"}})
    with pytest.raises(Exception, match="ServiceUnavailable"):
        finish_steps.finish_run(finish, world.steps)
    # and whose reconciler ends it, but cannot start the next run either (Lambda retries, then dead letters)
    with pytest.raises(run_repair.HandOverFailed):
        run_repair.reconcile(
            change_of(status_change(world, run.id, "FAILED", error="RunNotRecorded")), world.repairs
        )
    assert world.steps.runs.get(run.id).error.code == "execution_failed"  # type: ignore[union-attr]
    assert world.steps.threads.get("alice", run.thread_id).active_run_id == second.id
    capsys.readouterr()

    # When the sweep runs while StartExecution still fails
    report = run_repair.sweep(world.repairs)

    # Then the stuck run ends failed and the thread moves on (one failed start per thread and sweep)
    assert report.repaired == 1
    stuck = world.steps.runs.get(second.id)
    assert stuck.status is RunStatus.failed and stuck.error.code == "execution_not_started"  # type: ignore[union-attr]
    assert world.steps.threads.get("alice", run.thread_id).active_run_id == third.id
    assert _repairs_by_cause(capsys) == {"execution_not_started": 1}

    # When StartExecution works again, the next sweep starts the run that holds the thread
    world.starter.failing = False
    assert run_repair.sweep(world.repairs).repaired == 1
    assert world.execution_status(third.id) == "RUNNING"
    assert world.steps.runs.get(third.id).execution_arn == world.execution_arn(third.id)


def test_runs_queued_behind_nobody_are_started_and_a_run_in_no_line_ends(world: RepairWorld) -> None:
    # Given a thread whose queue waits behind no active run
    run, _ = run_mid_tool_round(world)
    waiting = queued_behind(world, run)
    world.tables["threads"].update_item(
        Key=thread_key("alice", run.thread_id), UpdateExpression="REMOVE active_run_id"
    )
    world.steps.runs.finish(run.id, status=RunStatus.completed, completed_at=clock.now())
    # and a queued run that is neither active nor in its thread's line (its enqueue stopped half-way)
    lost = run_record(alices_thread(world.steps, purpose="lost"))
    world.steps.runs.create(lost)

    report = run_repair.sweep(world.repairs)

    # Then the first in line takes the thread and starts; the lost one ends failed and is counted
    assert report.repaired == 2
    thread = world.steps.threads.get("alice", run.thread_id)
    assert thread.active_run_id == waiting.id and thread.queue == []
    assert world.execution_status(waiting.id) == "RUNNING"
    ended = world.steps.runs.get(lost.id)
    assert ended.status is RunStatus.failed and ended.metrics is not None
    assert ended.error.code == "execution_not_started"  # type: ignore[union-attr]


def test_the_scheduled_sweep_repairs_with_the_reconcilers_code(world: RepairWorld) -> None:
    # Given a thread held by a run whose execution is gone
    thread_id, run_id = _held_by(world, "scheduled", RunStatus.in_progress)
    ctx = world.steps
    assert ctx.blobs is not None
    cleaning = cleanup.CleanupContext(
        threads=ctx.threads,
        runs=ctx.runs,
        messages=ctx.messages,
        cleanups=CleanupLedger(world.tables["threads"]),
        blobs=ctx.blobs,
        engine=ctx.engine,
        settings=CleanupSettings(),
    )
    # (a cleanup-only sweep leaves it alone)
    assert cleanup.sweep(cleaning).repaired == 0

    # When the scheduled sweep runs, as functions/sweep_threads runs it
    report = cleanup.sweep(cleaning, repairs=world.repairs)

    # Then its report counts the repair, the run has ended and the thread is free
    assert (report.repaired, report.repairs_failed) == (1, 0)
    assert ctx.runs.get(run_id).error.code == "execution_missing"  # type: ignore[union-attr]
    assert ctx.threads.get("alice", thread_id).active_run_id is None
