"""Following a run through its event log, without I/O: which events are new, when to reconnect and after how
long, and when ``runs.wait`` must look at the run itself. The sync and the async client drive these."""

from __future__ import annotations

import time
from collections.abc import Iterable

from threadrunner.client.api_calls import MAX_EVENT_WAIT_SECONDS
from threadrunner.client.errors import (
    ConnectionLostError,
    RateLimitError,
    ServerError,
    ThreadrunnerError,
    WaitTimeoutError,
)
from threadrunner.models.api_runs import RunOut
from threadrunner.models.run_events import RunEvent, RunEventPage, RunEventType

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timed_out"})
# What a long poll may meet and come back from: the connection, the gateway or the service briefly down.
RECONNECTABLE = (ConnectionLostError, ServerError, RateLimitError)
# A run's record is written before its event; should a reader still find it behind, it looks again this soon.
RECHECK_SECONDS = 0.2


def is_settled(run: RunOut) -> bool:
    """Nothing will happen without the caller: the run ended, or it waits for tool outputs or approvals."""
    return run.status in TERMINAL_STATUSES or (
        run.status == "requires_action" and run.required_action is not None
    )


class Deadline:
    def __init__(self, seconds: float | None, what: str) -> None:
        self._ends = None if seconds is None else time.monotonic() + seconds
        self._seconds = seconds
        self._what = what

    def remaining(self, most: float) -> float:
        """Seconds left, at most ``most``; WaitTimeoutError once none are left."""
        if self._ends is None:
            return most
        left = self._ends - time.monotonic()
        if left <= 0:
            raise WaitTimeoutError("wait_timeout", f"{self._what} after {self._seconds:g} s")
        return min(most, left)


class Backoff:
    """Delays between reconnections (0.5 s, doubling to 10 s); after ``attempts`` failures in a row the
    last error is raised. A 429's Retry-After is honoured."""

    def __init__(self, *, first: float = 0.5, ceiling: float = 10.0, attempts: int = 8) -> None:
        self._first = first
        self._ceiling = ceiling
        self._attempts = attempts
        self._failures = 0

    def delay_after(self, error: ThreadrunnerError) -> float:
        self._failures += 1
        if self._failures > self._attempts:
            raise error
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, 60.0)
        return float(min(self._ceiling, self._first * 2 ** (self._failures - 1)))

    def reset(self) -> None:
        self._failures = 0


class EventCursor:
    """Where a reader is in a run's log: ``after`` is the last seq it took, so a reconnection asks for the
    events after it and gets no gap and no duplicate. ``ended`` once a run-ending event was taken."""

    def __init__(self, run_id: str, after: int = 0) -> None:
        self.run_id = run_id
        self.after = after
        self.ended = False
        self.backoff = Backoff()

    def take(self, page: RunEventPage) -> list[RunEvent]:
        fresh = []
        for event in sorted(page.events, key=lambda event: event.seq):
            if event.seq <= self.after or self.ended:
                continue
            fresh.append(event)
            self.after = event.seq
            self.ended = event.type.ends_run
        return fresh


class RunWatch:
    """``runs.wait``'s reading of the log: it looks at the run once the log says it ended, or while an
    action it logged as required has not been logged as submitted."""

    def __init__(self, run_id: str, timeout: float | None) -> None:
        self.cursor = EventCursor(run_id)
        self.deadline = Deadline(timeout, f"run {run_id} still going")
        self.action_pending = False

    def see(self, events: Iterable[RunEvent]) -> None:
        for event in events:
            if event.type == RunEventType.action_required:
                self.action_pending = True
            elif event.type == RunEventType.action_submitted or event.type.ends_run:
                self.action_pending = False

    def poll_seconds(self) -> float:
        """How long the next long poll may wait: briefly while an action is pending (the run is looked at
        after each poll), else as long as the route and the caller's deadline allow."""
        return self.deadline.remaining(1.0 if self.action_pending else MAX_EVENT_WAIT_SECONDS)

    @property
    def should_look(self) -> bool:
        return self.cursor.ended or self.action_pending
