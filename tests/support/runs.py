"""A run as the API leaves it for the workflow: its thread, the lock, the run item (and the user message)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from threadrunner import clock, history
from threadrunner.models.records import RunRecord, ThreadRecord
from threadrunner.workflow.context import StepContext


def alices_thread(ctx: StepContext, *, purpose: str = "test", engine: str = "responses") -> ThreadRecord:
    """Alice's thread with the data-analyst for ``purpose`` (the same one on every call)."""
    thread, _ = ctx.threads.get_or_create(
        user_id="alice",
        assistant="data-analyst",
        purpose=purpose,
        engine=engine,
        max_age_hours=24,
        ttl_days=30,
    )
    return thread


def run_record(
    thread: ThreadRecord,
    *,
    model: str = "gpt-4.1-mini",
    message: str = "What were total sales by region last quarter?",
    **fields: Any,
) -> RunRecord:
    """A new run of ``thread``'s user and engine, due in five minutes; ``fields`` set any other field."""
    now = clock.now()
    return RunRecord(
        id=clock.new_id("run"),
        thread_id=thread.id,
        user_id=thread.user_id,
        assistant=thread.assistant,
        engine=thread.engine,
        model=model,
        message=message,
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        **fields,
    )


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
    thread = alices_thread(ctx, purpose=purpose, engine=engine)
    run = run_record(thread, model=model, message=message)
    ctx.threads.acquire(thread, run.id)
    ctx.runs.create(run)
    if log_message:
        ctx.messages.add(history.user_message(run))
    return run
