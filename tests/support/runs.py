"""A run as the API leaves it for the workflow: its thread, the lock, the run item (and the user message)."""

from __future__ import annotations

from datetime import timedelta

from threadrunner import clock, history
from threadrunner.models.records import RunRecord
from threadrunner.workflow.context import StepContext


def started_run(
    ctx: StepContext,
    *,
    engine: str = "responses",
    model: str = "gpt-4.1-mini",
    message: str = "What were total sales by region last quarter?",
    purpose: str = "test",
    log_message: bool = False,
) -> RunRecord:
    """Alice's run with the data-analyst on the thread for ``purpose``, holding its lock; with
    ``log_message``, its user message is in the thread's log too (as POST runs writes it)."""
    thread, _ = ctx.threads.get_or_create(
        user_id="alice",
        assistant="data-analyst",
        purpose=purpose,
        engine=engine,
        max_age_hours=24,
        ttl_days=30,
    )
    now = clock.now()
    run = RunRecord(
        id=clock.new_id("run"),
        thread_id=thread.id,
        user_id="alice",
        assistant="data-analyst",
        engine=engine,
        model=model,
        message=message,
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
    )
    ctx.threads.acquire(thread, run.id)
    ctx.runs.create(run)
    if log_message:
        ctx.messages.add(history.user_message(run))
    return run
