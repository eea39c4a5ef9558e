"""An execution, state by state, as the Step Functions console shows it: built from the execution history.

Events are linked by ``previousEventId``; following those links tells which state (and which Map
iteration) each event belongs to, even when iterations run in parallel and their events interleave.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

_FAILURE_DETAILS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "MapIterationFailed": "mapIterationFailedEventDetails",
    "MapStateFailed": "mapStateFailedEventDetails",
}
_EXECUTION_ENDS = {
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
}


class TraceStep(BaseModel):
    """One visit of one state. ``status``: succeeded, caught (failed, then a Catch moved on), failed,
    running. ``attempts`` counts Retry attempts of a task; ``map_index`` is the Map item it ran for."""

    name: str
    type: str
    status: str
    started_at: datetime
    duration_ms: int | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    map_index: int | None = None


class _Visit:
    def __init__(self, name: str, type_: str, started_at: datetime, map_index: int | None) -> None:
        self.step = TraceStep(
            name=name, type=type_, status="running", started_at=started_at, map_index=map_index
        )
        self.failed = False
        self.exited = False
        self.last_at = started_at


def execution_trace(client: Any, execution_arn: str) -> list[TraceStep]:
    """The states the execution visited, in the order it entered them (``client``: boto3 stepfunctions)."""
    events = [
        event
        for page in client.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for event in page["events"]
    ]
    return build_trace(events)


def build_trace(events: list[dict[str, Any]]) -> list[TraceStep]:
    visits: list[_Visit] = []
    owner: dict[int, _Visit] = {}  # event id -> the state visit it belongs to
    iteration: dict[int, int | None] = {}  # event id -> the Map item index it runs under
    execution_end: dict[str, Any] | None = None

    for event in sorted(events, key=lambda event: event["id"]):
        kind: str = event["type"]
        previous = event.get("previousEventId", 0)
        index = iteration.get(previous)
        visit = owner.get(previous)
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            visit = _Visit(details["name"], kind.removesuffix("StateEntered"), event["timestamp"], index)
            visits.append(visit)
        elif kind.endswith("StateExited"):
            visit = _open_visit(visits, visit, event["stateExitedEventDetails"]["name"])
            if visit is not None:
                visit.exited = True
                visit.step.status = "caught" if visit.failed else "succeeded"
                index = visit.step.map_index
        elif kind.startswith(("MapState", "MapIteration")):
            # Map bookkeeping links to the iterations' last events but belongs to the Map state itself.
            visit = _open_visit(visits, None, None)
            if kind == "MapIterationStarted":
                index = event["mapIterationStartedEventDetails"]["index"]
        if visit is not None:
            visit.last_at = event["timestamp"]
            _record(visit, kind, event)
            owner[event["id"]] = visit
        if kind in _EXECUTION_ENDS:
            execution_end = event.get(_EXECUTION_ENDS[kind], {})
        iteration[event["id"]] = index

    for visit in visits:
        _finish(visit, execution_end)
    return [visit.step for visit in visits]


def _open_visit(visits: list[_Visit], linked: _Visit | None, name: str | None) -> _Visit | None:
    """The visit an event closes or belongs to: the linked one if its name matches (parallel iterations
    of one state), else the latest open visit of that state (or, without a name, of any Map state)."""
    if linked is not None and linked.step.name == name and not linked.exited:
        return linked
    for visit in reversed(visits):
        if not visit.exited and (visit.step.name == name if name else visit.step.type == "Map"):
            return visit
    return None


def _record(visit: _Visit, kind: str, event: dict[str, Any]) -> None:
    if kind in ("TaskScheduled", "LambdaFunctionScheduled"):
        visit.step.attempts += 1
    if kind in _FAILURE_DETAILS:
        details = event.get(_FAILURE_DETAILS[kind], {})
        visit.failed = True
        visit.step.error = details.get("error") or visit.step.error
        visit.step.cause = details.get("cause") or visit.step.cause
    elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
        # A retry succeeded: the earlier failure is history, not the outcome.
        visit.failed = False
        visit.step.error = visit.step.cause = None


def _finish(visit: _Visit, execution_end: dict[str, Any] | None) -> None:
    if not visit.exited and (visit.failed or execution_end is not None):
        # It never moved on: its own failure (in a Map iteration), a Fail state, or an uncaught error.
        visit.step.status = "failed"
        if not visit.failed and execution_end is not None:
            visit.step.error = execution_end.get("error")
            visit.step.cause = execution_end.get("cause")
    if visit.step.status != "running":
        visit.step.duration_ms = round((visit.last_at - visit.step.started_at).total_seconds() * 1000)


def format_trace(steps: list[TraceStep], *, width: int = 120) -> str:
    """A plain-text table, one row per state visit, times relative to the first state."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "state", "type", "status", "at", "took", "error"):
        table.add_column(column, justify="right" if column in ("#", "at", "took") else "left")
    origin = steps[0].started_at if steps else None
    for number, step in enumerate(steps, start=1):
        name = step.name if step.map_index is None else f"  {step.name} [item {step.map_index}]"
        status = step.status if step.attempts <= 1 else f"{step.status} ({step.attempts} attempts)"
        offset = (step.started_at - origin).total_seconds() if origin else 0.0
        took = "" if step.duration_ms is None else f"{step.duration_ms} ms"
        error = (
            "" if step.error is None else step.error if step.cause is None else f"{step.error}: {step.cause}"
        )
        table.add_row(str(number), name, step.type, status, f"{offset:.3f}s", took, error)
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(table)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in output.splitlines())
