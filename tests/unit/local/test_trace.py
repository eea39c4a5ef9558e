"""The execution trace as `make demo` prints it: a plain-text table, one row per state visit."""

from __future__ import annotations

from threadrunner.execution_trace import build_trace

from local.trace import format_trace
from tests.support.execution_histories import History


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
