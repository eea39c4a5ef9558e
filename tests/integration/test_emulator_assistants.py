"""The emulator's Assistants v2 API through the real openai SDK: assistants, threads, messages with
attachments, runs and their steps, the thread lock, and the errors the real service gives.

Every exchange is validated against the OpenAI OpenAPI description (the ``emulator`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.beta.threads import Run

from local.emulator import EmulatorServer, Plan

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's, on every call

QUESTION = "What were total sales by region last quarter?"
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_table_schema", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "query_database", "parameters": {"type": "object"}}},
]


def _assistant(client: OpenAI, **fields: Any) -> str:
    settings = {
        "model": "gpt-4.1-mini",
        "name": "analyst",
        "instructions": "Current date: 2026-10-15",
        "tools": TOOLS,
    }
    return client.beta.assistants.create(**{**settings, **fields}).id


def _settle(client: OpenAI, run: Run, polls: int = 10) -> Run:
    for _ in range(polls):
        run = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
        if run.status not in ("queued", "in_progress", "cancelling"):
            return run
    raise AssertionError(f"{run.id} still {run.status}")


def test_assistants_are_created_updated_listed_and_deleted(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    first = _assistant(openai_client, description="one")
    second = _assistant(openai_client)
    updated = openai_client.beta.assistants.update(first, instructions="Be terse.")
    # only what the update names changes
    assert (updated.instructions, updated.description, len(updated.tools)) == ("Be terse.", "one", 2)
    assert [a.id for a in openai_client.beta.assistants.list(order="asc").data] == [first, second]
    assert [a.id for a in openai_client.beta.assistants.list(limit=1).data] == [second]  # newest first
    assert openai_client.beta.assistants.delete(first).deleted
    with pytest.raises(openai.NotFoundError):
        openai_client.beta.assistants.retrieve(first)


def test_a_run_uses_the_assistants_settings_unless_it_overrides_them(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    assistant_id = _assistant(openai_client, model="gpt-5-mini")
    thread = openai_client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = openai_client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    assert (run.model, run.instructions, len(run.tools), run.status) == (
        "gpt-5-mini",
        "Current date: 2026-10-15",
        2,
        "queued",
    )
    assert run.usage is None and run.expires_at is not None  # usage comes with the final status
    done = _settle(openai_client, run)
    assert done.status == "completed" and done.usage is not None and done.usage.total_tokens > 0
    assert done.expires_at is None
    override = openai_client.beta.threads.runs.create(
        thread.id, assistant_id=assistant_id, model="gpt-4.1", instructions="Other.", tools=[]
    )
    assert (override.model, override.instructions, override.tools) == ("gpt-4.1", "Other.", [])


def test_the_demo_question_pauses_for_tool_outputs_and_records_its_steps(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given the demo model asked the sales question
    thread = openai_client.beta.threads.create()
    run = openai_client.beta.threads.runs.create(
        thread.id,
        assistant_id=_assistant(openai_client),
        additional_messages=[{"role": "user", "content": QUESTION}],
    )
    waiting = _settle(openai_client, run)
    assert waiting.status == "requires_action" and waiting.required_action is not None
    calls = waiting.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(call.function.arguments) for call in calls] == [
        {"table": "sales"},
        {"table": "customers"},
    ]
    # When only some outputs arrive, the run refuses them
    with pytest.raises(openai.BadRequestError, match="Expected tool outputs"):
        openai_client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": calls[0].id, "output": "{}"}]
        )
    # and while it waits, the thread takes no messages and no other run
    with pytest.raises(openai.BadRequestError, match="while a run"):
        openai_client.beta.threads.messages.create(thread.id, role="user", content="and?")
    with pytest.raises(openai.BadRequestError, match="already has an active run"):
        openai_client.beta.threads.runs.create(thread.id, assistant_id=waiting.assistant_id)
    # Then all outputs go through, and the steps show the call with its output
    openai_client.beta.threads.runs.submit_tool_outputs(
        run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": c.id, "output": "{}"} for c in calls]
    )
    assert _settle(openai_client, run).status == "requires_action"  # now the query
    steps = openai_client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [(step.type, step.status) for step in steps] == [
        ("tool_calls", "completed"),
        ("tool_calls", "in_progress"),
    ]
    first_calls = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert [call.function.output for call in first_calls] == ["{}", "{}"]  # type: ignore[union-attr]
    assert steps[0].usage is not None and steps[1].usage is None


def test_messages_keep_attachments_and_page_by_cursor(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    upload = openai_client.files.create(file=("sales.csv", b"region,amount\nNorth,1\n"), purpose="assistants")
    thread = openai_client.beta.threads.create()
    sent = [
        openai_client.beta.threads.messages.create(
            thread.id,
            role="user",
            content=f"message {n}",
            attachments=[{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}] if n == 0 else None,
        )
        for n in range(3)
    ]
    assert sent[0].attachments is not None and sent[0].attachments[0].file_id == upload.id
    newest_first = openai_client.beta.threads.messages.list(thread.id, limit=2)
    assert [m.id for m in newest_first.data] == [sent[2].id, sent[1].id] and newest_first.has_more
    rest = openai_client.beta.threads.messages.list(thread.id, limit=2, after=sent[1].id)
    assert [m.id for m in rest.data] == [sent[0].id] and not rest.has_more
    with pytest.raises(openai.NotFoundError, match="No file found"):
        openai_client.beta.threads.messages.create(
            thread.id, role="user", content="x", attachments=[{"file_id": "file-missing", "tools": []}]
        )


def test_cancelling_shows_cancelling_then_cancelled_and_a_final_run_cannot_be_cancelled(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.never_finishes())
    thread = openai_client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = openai_client.beta.threads.runs.create(thread.id, assistant_id=_assistant(openai_client))
    assert openai_client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    cancelled = openai_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    with pytest.raises(openai.BadRequestError, match="Cannot cancel run with status 'cancelled'"):
        openai_client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_an_expired_run_frees_its_thread(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(Plan.expiring(0, Plan.tool_calls([("get_table_schema", {"table": "sales"})])))
    thread = openai_client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = openai_client.beta.threads.runs.create(thread.id, assistant_id=_assistant(openai_client))
    assert openai_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "expired"
    assert openai_client.beta.threads.messages.create(thread.id, role="user", content="again").role == "user"


def test_unknown_ids_are_404s(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    thread = openai_client.beta.threads.create()
    with pytest.raises(openai.NotFoundError, match="No assistant found"):
        openai_client.beta.threads.runs.create(thread.id, assistant_id="asst_missing")
    with pytest.raises(openai.NotFoundError, match="No run found"):
        openai_client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    assert openai_client.beta.threads.delete(thread.id).deleted
    with pytest.raises(openai.NotFoundError, match="No thread found"):
        openai_client.beta.threads.retrieve(thread.id)
