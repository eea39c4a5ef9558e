"""An execution, state by state, as the Step Functions console shows it: built from the execution history.
The API's run trace (services/run_history.py), `make demo` and the local stack read executions through this.

Events are linked by ``previousEventId``; following those links tells which state (and which Map
iteration) each event belongs to, even when iterations run in parallel and their events interleave.
Only names, times and errors are read from an event: its input and output (payloads) never are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

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
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
# The events that set the execution's status, as DescribeExecution would answer it.
_EXECUTION_STATUSES: dict[str, ExecutionStatus] = {
    "ExecutionStarted": "RUNNING",
    "ExecutionRedriven": "RUNNING",
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
_HISTORY_PAGE = 1000  # GetExecutionHistory's largest page


class TraceStep(BaseModel):
    """One visit of one state. ``status``: succeeded, caught (failed, then a Catch moved on), failed,
    running. ``ended_at`` is the visit's last event (None while it runs). ``attempts`` counts Retry attempts
    of a task; ``map_index`` is the Map item it ran for. ``error`` is the error's name; ``cause``, its
    text, may quote a payload (the API shows the name only)."""

    name: str
    type: str
    status: str
    started_at: datetime
    ended_at: datetime | None = None
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


def execution_history(client: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of the execution, page after page, without its input and output data
    (``client``: boto3 stepfunctions)."""
    pages = client.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn,
        includeExecutionData=False,
        PaginationConfig={"PageSize": _HISTORY_PAGE},
    )
    return [event for page in pages for event in page["events"]]


def execution_trace(client: Any, execution_arn: str) -> list[TraceStep]:
    """The states the execution visited, in the order it entered them."""
    return build_trace(execution_history(client, execution_arn))


def execution_status(events: list[dict[str, Any]]) -> ExecutionStatus | None:
    """The execution's status as its history tells it; None for no history."""
    status: ExecutionStatus | None = None
    for event in sorted(events, key=lambda event: event["id"]):
        status = _EXECUTION_STATUSES.get(event["type"], status)
    return status


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
        if visit is not None and visit.exited and not kind.endswith("StateExited"):
            visit = None  # what follows a state's exit (the execution's end) is no part of its visit
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
        visit.step.ended_at = visit.last_at
        visit.step.duration_ms = round((visit.last_at - visit.step.started_at).total_seconds() * 1000)
