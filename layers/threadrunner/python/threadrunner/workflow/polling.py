"""How the run waits for the model: short polls inside Check run while the model call is young, then Step
Functions Waits that back off with the call's age.

- The upstream's ``openai-poll-after-ms`` hint is a lower bound on every wait, never a replacement for the
  backoff (an upstream that always says 500 ms would otherwise pin polling at the floor for good).
- The backoff is keyed on the age of the current model call (``round_started_at``), so it restarts for each
  call: the last call of a two-round turn is polled as closely as the first.
- Check run may poll every ``SHORT_POLL_SECONDS`` inside one invocation until the call is
  ``check_wait_seconds`` old, and never past what its Lambda has left minus one upstream call's budget: one
  Wait + Check + Choice cycle costs about as much as 9 s of a 512 MB Lambda, so a short model call is best
  waited for in one Check invocation.
"""

from __future__ import annotations

import math

from threadrunner.models.workflow import PollSettings

# Short polls inside one Check run invocation: about every second (or the hint, when it is longer).
SHORT_POLL_SECONDS = 1.0
# A Step Functions Wait lasts about this share of the model call's age so far (then the cap): the later the
# answer comes, the more polls it saves, and the delay stays a fraction of the call's length.
BACKOFF_SHARE = 0.25


def hint_seconds(poll_after_ms: int | None) -> float:
    return max(poll_after_ms or 0, 0) / 1000


def next_wait_seconds(settings: PollSettings, call_age_seconds: float, poll_after_ms: int | None) -> int:
    """The Step Functions Wait before the next Check run: the backoff for a model call this old, never
    shorter than the first wait or the hint, never longer than the cap (0: tests that do not wait)."""
    if settings.max_wait_seconds == 0:
        return 0
    backoff = max(settings.first_wait_seconds, 1, math.ceil(max(call_age_seconds, 0) * BACKOFF_SHARE))
    wait = max(backoff, math.ceil(hint_seconds(poll_after_ms)))
    return int(min(wait, settings.max_wait_seconds))


def short_poll_pause(
    settings: PollSettings,
    call_age_seconds: float,
    poll_after_ms: int | None,
    *,
    remaining_seconds: float | None,
    poll_budget_seconds: float,
) -> float | None:
    """How long Check run sleeps before polling again inside this invocation, or None: hand back to a Step
    Functions Wait. It polls again only while the model call stays younger than ``check_wait_seconds`` and
    the Lambda keeps, after the pause, the time one more upstream call may take (``poll_budget_seconds``)."""
    if settings.check_wait_seconds <= 0:
        return None
    pause = max(SHORT_POLL_SECONDS, hint_seconds(poll_after_ms))
    if call_age_seconds + pause > settings.check_wait_seconds:
        return None
    if remaining_seconds is not None and pause + poll_budget_seconds >= remaining_seconds:
        return None
    return pause
