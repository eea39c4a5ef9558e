"""The reconciler (threadrunner.run_repair.reconcile, behind functions/reconcile_run): Step Functions says a
run's execution ended FAILED, TIMED_OUT or ABORTED, and the run ends failed with the cause as its error code,
its open tool calls answered and its upstream response cancelled, counted once, its thread handed on.
(moto DynamoDB and Step Functions, a fake engine; the local stack's own deliveries are in tests/e2e.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from threadrunner import clock, run_repair
from threadrunner.models.records import RunStatus
from threadrunner.models.repairs import RepairCause
from threadrunner.models.workflow import FinishRunInput
from threadrunner.workflow import finish_steps

from tests.support.emf import by_dimensions, emf_documents
from tests.support.repairs import (
    USAGE,
    RepairWorld,
    change_of,
    queued_behind,
    repair_world,
    run_mid_tool_round,
    status_change,
)

ENV = ("environment", "test")


@pytest.fixture
def world() -> Iterator[RepairWorld]:
    yield from repair_world()


def _published(capsys: pytest.CaptureFixture[str]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    return by_dimensions(emf_documents(capsys.readouterr().out))


def test_an_execution_that_timed_out_mid_tool_round_ends_its_run_and_hands_the_thread_on(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run whose model asked for two tools, and a run queued behind it
    run, calls = run_mid_tool_round(world)
    successor = queued_behind(world, run)
    capsys.readouterr()

    # When its execution passes the state machine's TimeoutSeconds (States.Timeout) in Run tools
    event = status_change(world, run.id, "TIMED_OUT", error="States.Timeout")
    repaired = run_repair.reconcile(change_of(event), world.repairs)

    # Then the run has ended failed, naming the cause
    assert repaired is RepairCause.execution_timed_out
    ended = world.steps.runs.get(run.id)
    assert ended.status is RunStatus.failed and ended.error is not None
    assert ended.error.code == "execution_timed_out" and "timed out" in ended.error.message
    # and what it left open upstream is closed, as Finish run does after a crash
    assert sorted(world.engine.closed) == sorted(calls)
    assert world.engine.cancelled == [run.current_response_id]
    # and its metrics and usage were recorded once, through the one accounting path
    assert ended.metrics is not None and ended.metrics.error == "execution_timed_out"
    day = world.steps.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, USAGE.total_tokens)
    published = _published(capsys)
    assert published[(ENV,)]["RunsFailed"] == 1 and published[(ENV,)]["RunsRepaired"] == 1
    assert published[(("cause", "execution_timed_out"), ENV)]["RunsRepaired"] == 1
    # and the queued run holds the thread now, its execution started
    thread = world.steps.threads.get("alice", run.thread_id)
    assert thread.active_run_id == successor.id and thread.queue == []
    assert world.execution_status(successor.id) == "RUNNING"
    assert world.steps.runs.get(successor.id).execution_arn == world.execution_arn(successor.id)
    # and the thread's log has the run's tool calls
    logged, _ = world.steps.messages.page(run.thread_id, limit=50)
    tool_calls = {m.tool_call.call_id for m in logged if m.run_id == run.id and m.tool_call is not None}
    assert tool_calls == set(calls)


def test_a_finish_run_out_of_retries_is_repaired_once_however_often_the_event_comes(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run whose Finish run kept failing: the workflow ended in "Run could not be recorded"
    run, _ = run_mid_tool_round(world, purpose="unrecorded")
    event = status_change(
        world, run.id, "FAILED", error="RunNotRecorded", cause="Finish run kept failing; the run record..."
    )
    capsys.readouterr()

    # When EventBridge delivers the event, then delivers it again (at least once)
    first = run_repair.reconcile(change_of(event), world.repairs)
    after_first = _published(capsys)
    second = run_repair.reconcile(change_of(event), world.repairs)

    # Then the first repairs the run and names the execution's error
    assert first is RepairCause.execution_failed and second is None
    ended = world.steps.runs.get(run.id)
    assert ended.status is RunStatus.failed and ended.error is not None
    assert ended.error.code == "execution_failed" and "RunNotRecorded" in ended.error.message
    assert after_first[(ENV,)]["RunsFailed"] == 1 and after_first[(ENV,)]["RunsRepaired"] == 1
    # and the second counts nothing: no metric, no usage, nothing upstream twice
    assert emf_documents(capsys.readouterr().out) == []
    day = world.steps.usage.day("alice", clock.now().date())  # type: ignore[union-attr]
    assert (day.runs, day.total_tokens) == (1, USAGE.total_tokens)
    assert len(world.engine.cancelled) == 1
    assert world.steps.threads.get("alice", run.thread_id).active_run_id is None


def test_a_run_that_ended_as_usual_is_left_alone(
    world: RepairWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run Finish run ended failed: the workflow then ends FAILED too ("Run did not complete")
    run, _ = run_mid_tool_round(world, purpose="usual")
    finish = FinishRunInput.model_validate(
        {
            "run_id": run.id,
            "run": {"status": "failed"},
            "error": {"Error": "UpstreamRejected", "Cause": "400"},
        }
    )
    finish_steps.finish_run(finish, world.steps)
    capsys.readouterr()

    # When its status change arrives
    event = status_change(world, run.id, "FAILED", error="RunNotCompleted")
    repaired = run_repair.reconcile(change_of(event), world.repairs)

    # Then nothing changes and nothing is counted
    assert repaired is None
    assert world.steps.runs.get(run.id).error.code == "UpstreamRejected"  # type: ignore[union-attr]
    assert emf_documents(capsys.readouterr().out) == []


def test_an_event_of_another_state_machine_or_status_changes_nothing(world: RepairWorld) -> None:
    run, _ = run_mid_tool_round(world, purpose="other")
    foreign = status_change(world, run.id, "ABORTED")
    foreign["detail"]["stateMachineArn"] = "arn:aws:states:us-east-1:123456789012:stateMachine:someone-else"
    succeeded = status_change(world, run.id, "SUCCEEDED")

    assert run_repair.reconcile(change_of(foreign), world.repairs) is None
    assert run_repair.reconcile(change_of(succeeded), world.repairs) is None
    assert world.steps.runs.get(run.id).status is RunStatus.requires_action


def test_a_run_deleted_with_its_thread_is_nothing_to_repair(world: RepairWorld) -> None:
    event = status_change(world, "run_gone", "ABORTED")

    assert run_repair.reconcile(change_of(event), world.repairs) is None


def test_when_the_next_runs_start_fails_the_run_still_ends_and_the_failure_is_raised_for_a_retry(
    world: RepairWorld,
) -> None:
    # Given a run with a run queued behind it, and Step Functions refusing StartExecution
    run, _ = run_mid_tool_round(world, purpose="refused")
    successor = queued_behind(world, run)
    world.starter.failing = True

    # When its execution is aborted, the reconciler raises (Lambda retries it, then dead-letters it)
    with pytest.raises(run_repair.HandOverFailed):
        run_repair.reconcile(change_of(status_change(world, run.id, "ABORTED")), world.repairs)

    # Then the run has ended all the same, and the successor holds the thread, not started yet
    assert world.steps.runs.get(run.id).error.code == "execution_aborted"  # type: ignore[union-attr]
    assert world.steps.threads.get("alice", run.thread_id).active_run_id == successor.id
    assert world.execution_status(successor.id) is None
    # and Lambda's retry, with Step Functions back, starts it
    world.starter.failing = False
    retried = run_repair.reconcile(change_of(status_change(world, run.id, "ABORTED")), world.repairs)
    assert retried is RepairCause.execution_not_started
    assert world.execution_status(successor.id) == "RUNNING"
    assert world.steps.runs.get(run.id).error.code == "execution_aborted"  # type: ignore[union-attr]
