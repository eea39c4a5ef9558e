"""The emulator's streams through the real openai SDK: a streamed background response (created streaming,
read again with ``starting_after``) and a streamed chat completion, in the real event names and shapes. The
``emulator`` fixture checks every event against the OpenAI OpenAPI description after each test."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from local.emulator import EmulatorServer, Plan
from tests.support.openai_contract import stream_event_problems

ANSWER = "Total sales last quarter were 4,590 across the four regions, with East ahead of the others."
QUERY = {"query": "SELECT 1"}


def _create(client: OpenAI, **extra: Any) -> Any:
    conversation = client.conversations.create()
    arguments: dict[str, Any] = {"background": True, **extra}
    return client.responses.create(
        model="m", input="Sales?", conversation=conversation.id, stream=True, **arguments
    )


def test_a_streamed_background_response_resumes_after_any_event(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a streamed background response whose creator kept only its first event
    emulator.script(Plan.message(ANSWER))
    with _create(openai_client) as created:
        first = next(iter(created))
    assert first.type == "response.created" and first.sequence_number == 0
    assert first.response.status == "queued" and first.response.output == []
    # When the stream is read again after event 0, then after the third event it gave
    events = []
    with openai_client.responses.retrieve(first.response.id, stream=True, starting_after=0) as stream:
        for event in stream:
            events.append(event)
            if len(events) == 3:
                break
    with openai_client.responses.retrieve(
        first.response.id, stream=True, starting_after=events[-1].sequence_number
    ) as stream:
        events += list(stream)
    # Then the events follow on without a gap, in the real order, and the deltas make the final answer
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    types = [e.type for e in events]
    assert types[:3] == ["response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1
    final = openai_client.responses.retrieve(first.response.id)
    assert "".join(d.delta for d in deltas) == final.output_text == ANSWER
    assert {d.item_id for d in deltas} == {final.output[0].id}


def test_tool_calls_stream_as_output_items(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    # Given a model that calls a tool
    emulator.script(Plan.tool_calls([("query_database", QUERY)]))
    with _create(openai_client) as created:
        response_id = next(iter(created)).response.id
    # When its stream is read to the end
    with openai_client.responses.retrieve(response_id, stream=True) as stream:
        events = list(stream)
    # Then the call comes as an output item, and no text
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [e.item.type for e in done] == ["function_call"]
    assert json.loads(done[0].item.arguments) == QUERY  # type: ignore[union-attr]
    assert not [e for e in events if e.type == "response.output_text.delta"]
    assert events[-1].type == "response.completed"


def test_only_a_response_created_streaming_can_be_streamed_again(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a background response created without streaming
    conversation = openai_client.conversations.create()
    response = openai_client.responses.create(
        model="m", input="Hi", conversation=conversation.id, background=True
    )
    # When its stream is asked for, Then the emulator refuses, naming stream
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.responses.retrieve(response.id, stream=True)
    assert refused.value.param == "stream"  # type: ignore[attr-defined]


def test_a_streamed_chat_completion_is_the_same_answer_in_chunks(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given the same answer asked for whole, then streamed with the usage
    messages: list[Any] = [{"role": "user", "content": "Sales?"}]
    emulator.script(Plan.message(ANSWER), Plan.message(ANSWER))
    whole = openai_client.chat.completions.create(model="m", messages=messages)
    chunks = list(
        openai_client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    # Then the content chunks join into the answer, the finish reason comes last, then the usage
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content == ANSWER
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert emulator.wait_for_exchanges(2)[-1].response_body.endswith(b"data: [DONE]\n\n")


def test_a_streamed_chat_tool_call_comes_whole_in_one_chunk(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.tool_calls([("query_database", QUERY)]))
    chunks = list(
        openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Sales?"}], stream=True
        )
    )
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function and json.loads(calls[0].function.arguments or "") == QUERY
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_contract_check_names_a_broken_stream_event(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a recorded stream whose delta event lost its sequence number
    emulator.script(Plan.message(ANSWER))
    with _create(openai_client, background=False) as stream:
        list(stream)
    exchange = emulator.wait_for_exchanges(1)[-1]
    body = exchange.response_body.replace(
        b'"type": "response.output_text.delta", "sequence_number"',
        b'"type": "response.output_text.delta", "number"',
        1,
    )
    # When it is checked, Then the problem names the event
    problems = stream_event_problems(exchange.model_copy(update={"response_body": body}))
    assert problems and all(p.startswith("event ") for p in problems)
    assert stream_event_problems(exchange) == []
