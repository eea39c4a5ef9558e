"""Step Functions execution histories, built event by event as the service (and moto) links them, and a fake
stepfunctions client that answers one in pages (threadrunner.execution_trace reads them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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


class FakeStepFunctions:
    """A stepfunctions client with one execution's history, ``page_size`` events a page; it records the
    arguments each history read was made with."""

    def __init__(self, events: list[dict[str, Any]], *, page_size: int = 2) -> None:
        self.events = events
        self.page_size = page_size
        self.reads: list[dict[str, Any]] = []

    def get_paginator(self, operation: str) -> FakeStepFunctions:
        assert operation == "get_execution_history"
        return self

    def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
        self.reads.append(arguments)
        size = self.page_size
        return [{"events": self.events[i : i + size]} for i in range(0, len(self.events), size)] or [
            {"events": []}
        ]
