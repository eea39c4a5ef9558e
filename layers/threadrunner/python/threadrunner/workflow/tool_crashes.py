"""Tool calls whose Lambda died: the model gets an error output for each, and the run goes on.

Run tools (run.asl.json) retries a tool Lambda that was killed (timed out, out of memory, crashed) a bounded
number of times; the tool's own step stops trying after MAX_TOOL_ATTEMPTS deaths (workflow/tool_steps.py).
What still fails, in any way (a Lambda that cannot even start, an error of the step itself, retries used up),
is caught inside the Map item, so one call cannot fail the run. Submit tool outputs, which runs once every
item has ended, then answers each call of the round still without an output here.

The ledger keeps one output per call, first write wins (ToolCallLedger.save_output): a real output that
landed before this one is kept and submitted; one that lands later (a Lambda the service still ran) is
refused and reads back this error. Either way the model sees exactly what the ledger holds.
"""

from __future__ import annotations

import logging

from threadrunner import clock
from threadrunner.models.records import ToolCallRecord
from threadrunner.tools.registry import error_result
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)


def crash_message(call: ToolCallRecord) -> str:
    """What the model reads for a call whose tool never answered."""
    if call.attempts == 0:
        return f"the tool {call.name} could not be started (its Lambda failed before running it)"
    return (
        f"the tool {call.name} stopped without an output after {call.attempts} attempt(s) "
        "(its Lambda timed out, ran out of memory or crashed)"
    )


def answer_dead_calls(
    calls: list[ToolCallRecord], round_number: int, ctx: StepContext
) -> list[ToolCallRecord]:
    """``calls`` (a run's ledger) with an error output stored for each call of ``round_number`` that has none;
    each as the ledger holds it after the write."""
    answered = []
    for call in calls:
        if call.round == round_number and call.output is None:
            call = _store_crash(call, ctx)
        answered.append(call)
    return answered


def _store_crash(call: ToolCallRecord, ctx: StepContext) -> ToolCallRecord:
    logger.warning(
        "run %s: tool call %s (%s) has no output after %s attempt(s); answering it with an error",
        call.run_id,
        call.call_id,
        call.name,
        call.attempts,
    )
    result = error_result(crash_message(call))
    finished = clock.now()
    started = call.started_at or finished
    stored = ctx.ledger.save_output(
        call.model_copy(
            update={
                "output": result.output,
                "is_error": True,
                "truncated": False,
                "finished_at": finished,
                "duration_ms": max(0, int((finished - started).total_seconds() * 1000)),
            }
        )
    )
    ctx.runs.events.tool_call_completed(stored)
    return stored
