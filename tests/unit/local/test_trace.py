"""The execution trace, from execution histories shaped like the ones Step Functions (and moto) return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.trace import build_trace, format_trace

START = datetime(2026, 1, 1, tzinfo=UTC)


class History:
    """Builds events the way the service links them: each names the event it follows."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, after: int | None = None, ms: int = 0, **details: Any) -> int:
        event_id = len(self.events) + 1
        previous = (event_id - 1) if after is None else after
        event: dict[str, Any] = {
            "id": event_id,
            "previousEventId": previous,
            "type": kind,
            "timestamp": START + timedelta(milliseconds=ms),
        }
        event.update(details)
        self.events.append(event)
        return event_id

    def enter(self, kind: str, name: str, after: int | None = None, ms: int = 0) -> int:
        return self.add(f"{kind}StateEntered", after, ms, stateEnteredEventDetails={"name": name})

    def exit(self, kind: str, name: str, after: int | None = None, ms: int = 0) -> int:
        return self.add(f"{kind}StateExited", after, ms, stateExitedEventDetails={"name": name})

    def task(self, name: str, after: int | None = None, ms: int = 0, took: int = 10) -> int:
        self.enter("Task", name, after, ms)
        self.add("TaskScheduled", ms=ms)
        self.add("TaskStarted", ms=ms)
        self.add("TaskSucceeded", ms=ms + took)
        return self.exit("Task", name, ms=ms + took)

    def failure(self, error: str, cause: str, ms: int = 0) -> int:
        return self.add("TaskFailed", ms=ms, taskFailedEventDetails={"error": error, "cause": cause})


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


def test_the_table_shows_each_visit_in_order() -> None:
    history = History()
    history.task("Start run", after=0, took=25)
    history.enter("Task", "Check run", ms=30)
    history.add("TaskScheduled", ms=30)
    history.failure("UpstreamQuotaExceeded", "no quota", ms=35)
    history.exit("Task", "Check run", ms=35)

    text = format_trace(build_trace(history.events))

    lines = text.splitlines()
    assert lines[0].split() == ["#", "state", "type", "status", "at", "took", "error"]
    assert "Start run" in lines[1] and "succeeded" in lines[1] and "25 ms" in lines[1]
    assert "Check run" in lines[2] and "caught" in lines[2] and "UpstreamQuotaExceeded: no quota" in lines[2]
    assert "0.030s" in lines[2]
