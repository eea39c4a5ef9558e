"""How many history events one run can write, worst case, against Step Functions' 25,000 per execution.

run.asl.json's loop is bounded by ``max_polls`` (each poll: Wait, Check run, the Choice) and the tool calls
by ``max_tool_calls_per_run`` (worst case, each call in a round of its own: a Map with one iteration, then
Submit tool outputs). Settings and the CDK config refuse values whose worst case leaves less than half of
the limit free: task retries and Catches write events too.
"""

from __future__ import annotations

HISTORY_EVENT_LIMIT = 25_000
# What the settings may use of it; the rest is the margin for retries, Catches and Finish run.
HISTORY_EVENT_BUDGET = HISTORY_EVENT_LIMIT // 2
# Wait (entered, exited), Check run (entered, scheduled, started, succeeded, exited), the Choice (2).
EVENTS_PER_POLL = 9
# Run tools (Map entered, started, succeeded, exited), one iteration (started, task x5, succeeded) and
# Submit tool outputs (task x5).
EVENTS_PER_TOOL_CALL = 4 + 7 + 5
# Execution started/succeeded, Start run, Collect outputs or Cancel run, Finish run.
EVENTS_PER_RUN = 2 + 5 + 5 + 5


def worst_case_history_events(max_polls: int, max_tool_calls: int) -> int:
    return EVENTS_PER_RUN + max_polls * EVENTS_PER_POLL + max_tool_calls * EVENTS_PER_TOOL_CALL


def check_history_budget(max_polls: int, max_tool_calls: int) -> None:
    """ValueError when a run could come near the history limit with these settings."""
    worst = worst_case_history_events(max_polls, max_tool_calls)
    if worst > HISTORY_EVENT_BUDGET:
        raise ValueError(
            f"max_polls={max_polls} and max_tool_calls_per_run={max_tool_calls} allow {worst} history "
            f"events per run; keep it under {HISTORY_EVENT_BUDGET} (half the {HISTORY_EVENT_LIMIT} limit)"
        )
