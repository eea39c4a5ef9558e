"""The emulator through the real openai SDK: conversations, the demo flow, locking, cancel, files, auth.

Every exchange of every test here is validated against the OpenAI OpenAPI description (the ``emulator``
fixture does it after each test).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from local.emulator import EmulatorServer, Plan

QUESTION = "What were total sales by region last quarter?"
INSTRUCTIONS = "You are a careful data analyst.\nCurrent date: 2026-10-15"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_table_schema",
        "description": "Columns, keys and types of one table.",
        "parameters": {
            "type": "object",
            "properties": {"table": {"type": "string"}},
            "required": ["table"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "query_database",
        "description": "Run one read-only SELECT.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "additionalProperties": False,
        },
        "strict": True,
    },
]


def start(client: OpenAI, conversation_id: str, input: Any, *, background: bool = True) -> Response:
    return client.responses.create(
        model="gpt-4.1-mini",
        conversation=conversation_id,
        instructions=INSTRUCTIONS,
        input=input,
        tools=TOOLS,
        background=background,
    )


def wait(client: OpenAI, response_id: str, max_polls: int = 10) -> Response:
    for _ in range(max_polls):
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
    raise AssertionError(f"{response_id} still running after {max_polls} polls")


def calls_of(response: Response) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item.name, json.loads(item.arguments)) for item in response.output if item.type == "function_call"
    ]


def outputs_for(response: Response, output: dict[str, Any]) -> list[Any]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": json.dumps(output)}
        for item in response.output
        if item.type == "function_call"
    ]


def texts(items: list[Any]) -> list[str]:
    return [item.model_dump()["content"][0]["text"] for item in items]


# Conversations.
def test_conversation_create_retrieve_items_and_delete(openai_client: OpenAI) -> None:
    # Given a conversation created with metadata and a first message
    created = openai_client.conversations.create(
        metadata={"thread": "thr_1"}, items=[{"type": "message", "role": "user", "content": "Hello"}]
    )
    assert created.id.startswith("conv_")
    assert openai_client.conversations.retrieve(created.id).metadata == {"thread": "thr_1"}

    # When two more items are added
    added = openai_client.conversations.items.create(
        created.id,
        items=[
            {"type": "message", "role": "assistant", "content": "Hi!"},
            {"type": "message", "role": "user", "content": "Bye"},
        ],
    )
    assert [item.model_dump()["role"] for item in added.data] == ["assistant", "user"]

    # Then the list pages through them, newest first by default
    newest = openai_client.conversations.items.list(created.id, limit=2)
    assert texts(newest.data) == ["Bye", "Hi!"]
    assert newest.has_more is True
    assert newest.last_id is not None
    rest = openai_client.conversations.items.list(created.id, limit=2, after=newest.last_id)
    assert texts(rest.data) == ["Hello"]
    assert rest.has_more is False
    oldest = openai_client.conversations.items.list(created.id, order="asc")
    assert texts(oldest.data) == ["Hello", "Hi!", "Bye"]

    # And once deleted it is gone
    deleted = openai_client.conversations.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "conversation.deleted")
    with pytest.raises(openai.NotFoundError):
        openai_client.conversations.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.conversations.items.list(created.id)


# The demo policy, the way the engine drives it.
def test_demo_flow_asks_for_schemas_then_queries_then_answers_with_the_rows(openai_client: OpenAI) -> None:
    conversation = openai_client.conversations.create()

    # Turn 1: the question; the model asks for both schemas in one response
    first = start(openai_client, conversation.id, QUESTION)
    assert first.status == "queued"
    first = wait(openai_client, first.id)
    assert first.status == "completed"
    assert calls_of(first) == [
        ("get_table_schema", {"table": "sales"}),
        ("get_table_schema", {"table": "customers"}),
    ]

    # Turn 2: the schemas; the model queries the last full quarter before the instructions' date
    second = wait(
        openai_client, start(openai_client, conversation.id, outputs_for(first, {"columns": []})).id
    )
    [(name, arguments)] = calls_of(second)
    assert name == "query_database"
    assert "s.order_date >= '2026-07-01' AND s.order_date < '2026-10-01'" in arguments["query"]
    assert "GROUP BY c.region" in arguments["query"]

    # Turn 3: the rows; the model answers with every region's figures
    rows = {
        "columns": ["region", "total_sales", "orders"],
        "rows": [["North America", 1234567.891, 412], ["Europe", "98765.4", 130], ["Latin America", 12, 1]],
        "row_count": 3,
        "truncated": False,
    }
    third = wait(openai_client, start(openai_client, conversation.id, outputs_for(second, rows)).id)
    assert third.status == "completed"
    answer = third.output_text
    assert "Q3 2026" in answer
    assert "North America: 1,234,567.89 (412 orders)" in answer
    assert "Europe: 98,765.40 (130 orders)" in answer
    assert "Latin America: 12.00 (1 orders)" in answer
    assert third.usage is not None
    assert third.usage.total_tokens == third.usage.input_tokens + third.usage.output_tokens > 0

    # And the conversation holds the whole exchange, in order
    items = openai_client.conversations.items.list(conversation.id, order="asc", limit=100).data
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "function_call",
        "function_call_output",
        "message",
    ]


def test_demo_policy_reports_a_failed_query(openai_client: OpenAI) -> None:
    conversation = openai_client.conversations.create()
    first = start(openai_client, conversation.id, QUESTION, background=False)
    second = start(openai_client, conversation.id, outputs_for(first, {"columns": []}), background=False)
    third = start(
        openai_client,
        conversation.id,
        outputs_for(second, {"error": "no such table: sales"}),
        background=False,
    )
    assert third.status == "completed"
    assert third.output_text == "The query failed: no such table: sales"


def test_demo_policy_acknowledges_other_questions(openai_client: OpenAI) -> None:
    response = openai_client.responses.create(model="gpt-4.1-mini", input="How are you today?")
    assert response.status == "completed"  # not background: final at once
    assert response.output_text.startswith('You asked: "How are you today?"')


def test_poll_after_header_is_sent_while_the_response_runs(openai_client: OpenAI) -> None:
    conversation = openai_client.conversations.create()
    created = openai_client.responses.with_raw_response.create(
        model="gpt-4.1-mini", conversation=conversation.id, input="hi", background=True
    )
    assert created.headers.get("openai-poll-after-ms") == "500"
    running = openai_client.responses.with_raw_response.retrieve(created.parse().id)
    assert (running.parse().status, running.headers.get("openai-poll-after-ms")) == ("in_progress", "500")
    done = openai_client.responses.with_raw_response.retrieve(created.parse().id)
    assert (done.parse().status, done.headers.get("openai-poll-after-ms")) == ("completed", None)


def test_previous_response_id_carries_the_context(openai_client: OpenAI) -> None:
    first = openai_client.responses.create(
        model="gpt-4.1-mini", input=QUESTION, tools=TOOLS, instructions=INSTRUCTIONS
    )
    second = openai_client.responses.create(
        model="gpt-4.1-mini",
        previous_response_id=first.id,
        input=outputs_for(first, {"columns": []}),
        tools=TOOLS,
        instructions=INSTRUCTIONS,
    )
    assert [name for name, _ in calls_of(second)] == ["query_database"]


def test_a_new_response_needs_every_tool_output(openai_client: OpenAI) -> None:
    conversation = openai_client.conversations.create()
    first = start(openai_client, conversation.id, QUESTION, background=False)
    only_one = outputs_for(first, {"columns": []})[:1]
    with pytest.raises(openai.BadRequestError) as refused:
        start(openai_client, conversation.id, only_one)
    missing = [item.call_id for item in first.output if item.type == "function_call"][1]
    assert f"No tool output found for function call {missing}." in refused.value.message
    assert refused.value.param == "input"


# Locking and cancelling.
def test_conversation_is_locked_while_a_response_runs_and_cancel_frees_it(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.never_finishes())
    running = start(openai_client, conversation.id, QUESTION)
    assert wait_polls(openai_client, running.id, polls=3) == ["in_progress"] * 3

    with pytest.raises(openai.BadRequestError) as locked:
        start(openai_client, conversation.id, "And the year before?")
    assert (locked.value.code, locked.value.param) == ("conversation_locked", "conversation")

    cancelled = openai_client.responses.cancel(running.id)
    assert cancelled.status == "cancelled"
    assert openai_client.responses.retrieve(running.id).status == "cancelled"
    assert start(openai_client, conversation.id, "And the year before?").status == "queued"


def wait_polls(client: OpenAI, response_id: str, polls: int) -> list[str | None]:
    return [client.responses.retrieve(response_id).status for _ in range(polls)]


def test_cancelling_a_finished_response_changes_nothing(openai_client: OpenAI) -> None:
    finished = wait(openai_client, openai_client.responses.create(model="m", input="hi", background=True).id)
    assert openai_client.responses.cancel(finished.id).status == "completed"


def test_only_background_responses_can_be_cancelled(openai_client: OpenAI) -> None:
    done = openai_client.responses.create(model="m", input="hi")
    with pytest.raises(openai.BadRequestError):
        openai_client.responses.cancel(done.id)


def test_deleted_response_is_gone(openai_client: OpenAI) -> None:
    done = openai_client.responses.create(model="m", input="hi")
    openai_client.responses.delete(done.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(done.id)


# Files.
def test_files_upload_retrieve_content_list_and_delete(openai_client: OpenAI) -> None:
    uploaded = openai_client.files.create(
        file=("report.csv", b"region,total\nEurope,1\n"), purpose="assistants"
    )
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("report.csv", 22, "assistants")

    assert openai_client.files.retrieve(uploaded.id).filename == "report.csv"
    assert openai_client.files.content(uploaded.id).read() == b"region,total\nEurope,1\n"
    assert [listed.id for listed in openai_client.files.list(purpose="assistants")] == [uploaded.id]
    assert list(openai_client.files.list(purpose="batch")) == []

    deleted = openai_client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        openai_client.files.retrieve(uploaded.id)


# Auth.
def test_requests_without_a_key_answer_401(openai_client: OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        openai_client.conversations.create(extra_headers={"Authorization": openai.omit})
    assert refused.value.status_code == 401
    assert refused.value.type == "invalid_request_error"


def test_a_configured_key_is_the_only_one_accepted() -> None:
    with EmulatorServer(api_key="sk-right") as strict:
        wrong = OpenAI(base_url=strict.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            wrong.conversations.create()
        assert refused.value.code == "invalid_api_key"
        right = OpenAI(base_url=strict.base_url, api_key="sk-right", max_retries=0)
        assert right.conversations.create().id.startswith("conv_")
