"""Threads: one per (user, assistant, purpose) while it is fresh."""

from __future__ import annotations

from threadrunner.assistants import load_assistant
from threadrunner.models.api import CreateThreadRequest, ThreadOut
from threadrunner.services.context import ApiContext


def get_or_create_thread(
    ctx: ApiContext, user_id: str, request: CreateThreadRequest
) -> tuple[ThreadOut, bool]:
    load_assistant(
        ctx.tool_settings.assistants_dir, request.assistant
    )  # unknown assistant: 422 on `assistant`
    thread, created = ctx.threads.get_or_create(
        user_id=user_id,
        assistant=request.assistant,
        purpose=request.purpose,
        engine=ctx.run_settings.engine,
        max_age_hours=ctx.run_settings.thread_max_age_hours,
        ttl_days=ctx.run_settings.thread_ttl_days,
    )
    return ThreadOut.of(thread), created


def get_thread(ctx: ApiContext, user_id: str, thread_id: str) -> ThreadOut:
    return ThreadOut.of(ctx.threads.get(user_id, thread_id))
