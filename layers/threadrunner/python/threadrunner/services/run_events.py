"""``GET /v1/runs/{id}/events``: a run's event log (threadrunner.stores.run_events) read after a ``seq``, with a
long poll: with ``wait`` the call returns as soon as an event comes, or empty when the wait ends, so a client
that reconnects with its last ``seq`` resumes exactly where it stopped and misses nothing. The local stack's
Server-Sent Events (``?stream=true``) are a loop over this call (local/http_api.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from threadrunner.models.run_events import RunEventPage
from threadrunner.services.context import ApiContext

MAX_WAIT_SECONDS = 20  # inside the API Lambda's timeout, and API Gateway's 30 s
PAGE_SIZE = 100
_FIRST_PAUSE = 0.1
_MAX_PAUSE = 1.0


def list_events(
    ctx: ApiContext,
    user_id: str,
    run_id: str,
    *,
    after: int = 0,
    wait: float = 0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunEventPage:
    """The caller's run's events after ``after`` (404 for anyone else's run), waiting up to ``wait`` seconds
    for one. An ended run whose last event is logged answers at once: nothing comes after it."""
    run = ctx.runs.get_for_user(run_id, user_id)
    deadline = clock() + min(wait, MAX_WAIT_SECONDS)
    pause = _FIRST_PAUSE
    terminal = run.status.is_terminal
    while True:
        events = ctx.runs.events.after(run_id, after, limit=PAGE_SIZE)
        left = deadline - clock()
        # The run's end is written just before its last event: until that is logged, more is coming.
        if events or left <= 0 or (terminal and ctx.runs.events.ended(run_id)):
            break
        sleep(min(pause, left))
        pause = min(pause * 1.5, _MAX_PAUSE)
        terminal = terminal or ctx.runs.get(run_id).status.is_terminal
    return RunEventPage(events=events, next=events[-1].seq if events else after)
