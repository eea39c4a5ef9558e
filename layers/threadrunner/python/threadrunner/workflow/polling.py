"""How long Wait for model waits next: the upstream's hint when it gives one, else a capped backoff."""

from __future__ import annotations

import math

from threadrunner.models.workflow import PollSettings


def next_wait_seconds(settings: PollSettings, poll_count: int, poll_after_ms: int | None) -> int:
    if settings.max_wait_seconds == 0:
        return 0
    if poll_after_ms is not None:
        hinted = math.ceil(poll_after_ms / 1000)
        return max(settings.first_wait_seconds, min(hinted, settings.max_wait_seconds))
    # first, first*1.5, first*2.25, ... capped: short runs answer fast, long runs cost few transitions
    backoff = max(settings.first_wait_seconds, 1) * 1.5 ** max(poll_count - 1, 0)
    return int(min(math.ceil(backoff), settings.max_wait_seconds))
