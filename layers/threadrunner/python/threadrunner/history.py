"""What a run adds to its thread's message log: the user message when the run is created (so it is never
lost, even if the run never starts), then its tool call summaries and the answer when it ends."""

from __future__ import annotations

from threadrunner.models.records import MessageRecord, MessageRole, RunRecord
from threadrunner.stores.messages import message_id


def user_message(run: RunRecord) -> MessageRecord:
    return MessageRecord(
        thread_id=run.thread_id,
        message_id=message_id(run.id, 0),
        user_id=run.user_id,
        run_id=run.id,
        role=MessageRole.user,
        created_at=run.created_at,
        content=run.message,
    )


def answer_id(run: RunRecord) -> str:
    """Where the run's answer stands in its thread's log: after its tool calls."""
    return message_id(run.id, len(run.tool_calls) + 1)


def run_outputs(run: RunRecord) -> list[MessageRecord]:
    """Positions 1..n: the tool calls in the order the model asked for them; n+1: the answer, if any.
    Deterministic ids, so a retried step writes the same entries again."""
    ended = run.completed_at or run.created_at
    entries = [
        MessageRecord(
            thread_id=run.thread_id,
            message_id=message_id(run.id, position),
            user_id=run.user_id,
            run_id=run.id,
            role=MessageRole.tool,
            created_at=ended,
            content=call.output,
            tool_call=call,
        )
        for position, call in enumerate(run.tool_calls, start=1)
    ]
    if run.answer:
        entries.append(
            MessageRecord(
                thread_id=run.thread_id,
                message_id=answer_id(run),
                user_id=run.user_id,
                run_id=run.id,
                role=MessageRole.assistant,
                created_at=ended,
                content=run.answer,
                citations=run.citations,
            )
        )
    return entries
