"""The execution trace (threadrunner.execution_trace), from execution histories shaped like the ones Step
Functions (and moto) return: which state each event belongs to, times, errors and the execution's status."""

from __future__ import annotations

import pytest
from threadrunner.execution_trace import build_trace, execution_history, execution_status, execution_trace

from tests.support.execution_histories import START, FakeStepFunctions, History


def test_parallel_map_iterations_are_attributed_to_their_items() -> None:
    history = History()
    history.add("ExecutionStarted", after=0)
    history.task("Start run", ms=0, took=20)
    map_entered = history.enter("Map", "Run tools", ms=30)
    history.add("MapStateStarted", ms=30)
    first = history.add(
        "MapIterationStarted", ms=31, mapIterationStartedEventDetails={"name": "Run tools", "index": 0}
    )
    second = history.add(
        "MapIterationStarted",
        after=first - 1,
        ms=31,
        mapIterationStartedEventDetails={"name": "Run tools", "index": 1},
    )
    # Interleaved: item 1 enters first, then item 0; each task's events link to its own iteration.
    enter_1 = history.enter("Task", "Run tool", after=second, ms=32)
    enter_0 = history.enter("Task", "Run tool", after=first, ms=33)
    scheduled_0 = history.add("TaskScheduled", after=enter_0, ms=33)
    scheduled_1 = history.add("TaskScheduled", after=enter_1, ms=34)
    done_0 = history.add("TaskSucceeded", after=scheduled_0, ms=40)
    exit_0 = history.exit("Task", "Run tool", after=done_0, ms=40)
    history.add("MapIterationSucceeded", after=exit_0, ms=41, mapIterationSucceededEventDetails={"index": 0})
    done_1 = history.add("TaskSucceeded", after=scheduled_1, ms=60)
    exit_1 = history.exit("Task", "Run tool", after=done_1, ms=60)
    last = history.add(
        "MapIterationSucceeded", after=exit_1, ms=61, mapIterationSucceededEventDetails={"index": 1}
    )
    history.add("MapStateSucceeded", after=last, ms=62)
    history.exit("Map", "Run tools", after=last, ms=62)
    history.task("Submit tool outputs", ms=70)
    history.add("ExecutionSucceeded", ms=80)

    steps = build_trace(history.events)

    assert [(step.name, step.type, step.map_index) for step in steps] == [
        ("Start run", "Task", None),
        ("Run tools", "Map", None),
        ("Run tool", "Task", 1),
        ("Run tool", "Task", 0),
        ("Submit tool outputs", "Task", None),
    ]
    assert [step.duration_ms for step in steps] == [20, 32, 28, 7, 10]
    assert all(step.status == "succeeded" for step in steps)
    assert steps[1].started_at == history.events[map_entered - 1]["timestamp"]


def test_a_retried_task_that_succeeds_counts_attempts_and_keeps_no_error() -> None:
    history = History()
    history.enter("Task", "Check run", after=0)
    history.add("TaskScheduled")
    history.failure("UpstreamUnavailable", '{"errorType":"UpstreamUnavailable"}', ms=5)
    history.add("TaskScheduled", ms=2005)
    history.add("TaskSucceeded", ms=2010)
    history.exit("Task", "Check run", ms=2010)

    (step,) = build_trace(history.events)

    assert step.status == "succeeded"
    assert step.attempts == 2
    assert step.error is None
    assert step.duration_ms == 2010


def test_a_caught_failure_and_a_fail_state_are_reported() -> None:
    history = History()
    history.enter("Task", "Check run", after=0)
    history.add("TaskScheduled")
    history.failure("UpstreamQuotaExceeded", "no quota", ms=5)
    history.exit("Task", "Check run", ms=6)
    history.task("Finish run", ms=10)
    history.enter("Fail", "Run did not complete", ms=20)
    history.add(
        "ExecutionFailed", ms=21, executionFailedEventDetails={"error": "RunNotCompleted", "cause": "see run"}
    )

    check, finish, fail = build_trace(history.events)

    assert (check.status, check.error, check.cause) == ("caught", "UpstreamQuotaExceeded", "no quota")
    assert finish.status == "succeeded"
    assert (fail.status, fail.error, fail.cause) == ("failed", "RunNotCompleted", "see run")


def test_a_failed_map_item_fails_its_task_and_the_map_catches_it() -> None:
    history = History()
    map_entered = history.enter("Map", "Run tools", after=0)
    history.add("MapStateStarted")
    iteration = history.add(
        "MapIterationStarted", mapIterationStartedEventDetails={"name": "Run tools", "index": 0}
    )
    history.enter("Task", "Run tool", after=iteration, ms=1)
    history.add("TaskScheduled", ms=1)
    failed = history.failure("ValueError", "bad arguments", ms=3)
    history.add("MapIterationFailed", after=failed, ms=4, mapIterationFailedEventDetails={"index": 0})
    history.add("MapStateFailed", ms=4)
    history.exit("Map", "Run tools", ms=5)
    assert map_entered == 1

    run_tools, run_tool = build_trace(history.events)

    assert (run_tool.status, run_tool.error, run_tool.map_index) == ("failed", "ValueError", 0)
    assert run_tools.status == "caught"
    assert run_tools.map_index is None


def test_a_state_still_running_has_no_duration() -> None:
    history = History()
    history.task("Start run", after=0)
    history.enter("Wait", "Wait for model", ms=20)

    start, wait = build_trace(history.events)

    assert start.status == "succeeded"
    assert (wait.status, wait.duration_ms) == ("running", None)


def test_each_visit_says_when_it_was_left() -> None:
    # Given a task that took 25 ms, then a state still running
    history = History()
    history.task("Start run", after=0, ms=5, took=25)
    history.enter("Wait", "Wait for model", ms=40)
    # When the trace is built
    start, wait = build_trace(history.events)
    # Then the task was left at its last event, and the running state not yet
    assert (start.started_at, start.ended_at) == (
        history.events[0]["timestamp"],
        history.events[-2]["timestamp"],
    )
    assert start.duration_ms == round((start.ended_at - start.started_at).total_seconds() * 1000) == 25
    assert wait.ended_at is None


@pytest.mark.parametrize(
    ("last", "status"),
    [
        (None, "RUNNING"),
        ("ExecutionSucceeded", "SUCCEEDED"),
        ("ExecutionFailed", "FAILED"),
        ("ExecutionTimedOut", "TIMED_OUT"),
        ("ExecutionAborted", "ABORTED"),
    ],
)
def test_the_execution_status_is_its_last_execution_event(last: str | None, status: str) -> None:
    history = History()
    history.add("ExecutionStarted", after=0)
    history.task("Start run")
    if last is not None:
        history.add(last)

    assert execution_status(history.events) == status
    assert execution_status(list(reversed(history.events))) == status  # by event id, not by list order


def test_no_history_has_no_status() -> None:
    assert execution_status([]) is None
    assert build_trace([]) == []


def test_the_history_is_read_page_after_page_without_execution_data() -> None:
    # Given an execution whose history comes in pages of two events
    history = History()
    history.add("ExecutionStarted", after=0)
    history.task("Start run", ms=1)
    history.task("Finish run", ms=20)
    history.add("ExecutionSucceeded", ms=40)
    client = FakeStepFunctions(history.events, page_size=2)
    # When it is read
    events = execution_history(client, "arn:aws:states:us-east-1:1:execution:m:run_1")
    steps = execution_trace(client, "arn:aws:states:us-east-1:1:execution:m:run_1")
    # Then every event of every page is read, and no input or output is asked for
    assert events == history.events
    assert [step.name for step in steps] == ["Start run", "Finish run"]
    assert client.reads[0]["executionArn"].endswith(":run_1")
    assert client.reads[0]["includeExecutionData"] is False
    assert steps[0].started_at >= START


def test_the_last_state_ends_at_its_exit_not_at_the_executions_end() -> None:
    # Given an execution that succeeds 30 ms after its last state exited
    history = History()
    history.add("ExecutionStarted", after=0)
    history.task("Finish run", ms=0, took=10)
    history.add("ExecutionSucceeded", ms=40)
    # When the trace is built, Then the state took 10 ms
    (finish,) = build_trace(history.events)
    assert finish.duration_ms == 10
    assert finish.ended_at == history.events[-2]["timestamp"]
