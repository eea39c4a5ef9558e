"""The emulator's Chat Completions through the real openai SDK: the demo flow, scripted turns, the tool-round
rules of the real service, slowness and errors. Every exchange is validated against the OpenAI OpenAPI
description (the ``emulator`` fixture does it after each test)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion

from local.emulator import EmulatorServer, Plan
from local.emulator.policy import last_full_quarter, sales_by_region_sql

QUESTION = "What were total sales by region last quarter?"
SYSTEM = "You are a careful data analyst.\nCurrent date: 2026-10-15"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
        },
    }
    for name in ("get_table_schema", "query_database")
]


def complete(client: OpenAI, messages: list[Any], **extra: Any) -> ChatCompletion:
    return client.chat.completions.create(model="gpt-4.1-mini", messages=messages, tools=TOOLS, **extra)


def assistant_turn(completion: ChatCompletion) -> dict[str, Any]:
    return completion.choices[0].message.model_dump(exclude_none=True, exclude={"annotations"})


def answers(completion: ChatCompletion, output: Any) -> list[dict[str, Any]]:
    return [
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(output)}
        for call in completion.choices[0].message.tool_calls or []
    ]


def test_the_demo_flow_asks_for_schemas_then_queries_then_answers(openai_client: OpenAI) -> None:
    # Given the sales question with the data analyst's tools
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    # When the model is asked, it wants both schemas in one turn
    first = complete(openai_client, messages)
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_table_schema", {"table": "sales"}),
        ("get_table_schema", {"table": "customers"}),
    ]
    # then, given the schemas, one query for the last full quarter before the date in the instructions
    messages += [assistant_turn(first), *answers(first, {"columns": ["id"]})]
    second = complete(openai_client, messages)
    query_call = (second.choices[0].message.tool_calls or [])[0]
    quarter = last_full_quarter(date(2026, 10, 15))
    assert json.loads(query_call.function.arguments) == {"query": sales_by_region_sql(quarter)}
    # then, given its rows, the answer
    rows = {"columns": ["region", "total_sales", "orders"], "rows": [["North", 1234.5, 3]]}
    messages += [assistant_turn(second), *answers(second, rows)]
    third = complete(openai_client, messages)
    assert third.choices[0].finish_reason == "stop"
    assert "North: 1,234.50 (3 orders)" in (third.choices[0].message.content or "")
    # and every answer says what it used
    usage = third.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_scripted_turns_play_in_order(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(
        Plan.message("Scripted hello."),
        Plan.incomplete("max_output_tokens", text="Cut sho"),
        Plan.incomplete("content_filter"),
    )
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    hello = complete(openai_client, messages)
    assert (hello.choices[0].finish_reason, hello.choices[0].message.content) == ("stop", "Scripted hello.")
    cut = complete(openai_client, messages)
    assert (cut.choices[0].finish_reason, cut.choices[0].message.content) == ("length", "Cut sho")
    assert complete(openai_client, messages).choices[0].finish_reason == "content_filter"
    assert emulator.pending_plans == 0


def test_without_tools_the_demo_model_just_answers(openai_client: OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": QUESTION}], tool_choice="none", tools=TOOLS
    )
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.choices[0].message.content or "").startswith(f'You asked: "{QUESTION}"')


def test_a_failed_turn_is_an_http_error(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(Plan.fail("server_error", "the model crashed"), Plan.fail("invalid_prompt", "refused"))
    with pytest.raises(openai.InternalServerError, match="the model crashed"):
        complete(openai_client, [{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as refused:
        complete(openai_client, [{"role": "user", "content": "hi"}])
    assert refused.value.code == "invalid_prompt"


def test_scripted_http_errors_apply_to_chat_creates(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(Plan.http_error(429, "rate_limit_exceeded", retry_after_ms=50))
    with pytest.raises(openai.RateLimitError) as limited:
        complete(openai_client, [{"role": "user", "content": "hi"}])
    assert limited.value.response.headers["retry-after-ms"] == "50"
    assert complete(openai_client, [{"role": "user", "content": "hi"}]).choices[0].finish_reason == "stop"


def test_every_tool_call_needs_its_tool_message(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(
        Plan.tool_calls([("get_table_schema", {"table": "a"}), ("get_table_schema", {"table": "b"})])
    )
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    first = complete(openai_client, messages)
    one_answer = answers(first, {})[:1]
    with pytest.raises(openai.BadRequestError, match="did not have response messages"):
        complete(openai_client, [*messages, assistant_turn(first), *one_answer])
    stray = [{"role": "tool", "tool_call_id": "call_nobody", "content": "{}"}]
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        complete(openai_client, [*messages, *stray])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": "m", "messages": [{"role": "assistant"}]}, "messages[0].content"),
    ],
)
def test_invalid_requests_name_the_parameter(
    emulator: EmulatorServer, body: dict[str, Any], param: str
) -> None:
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": "Bearer sk-test"}) as http:
        response = http.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_slow_turn_answers_later_without_holding_up_others(emulator: EmulatorServer) -> None:
    # Given a turn that takes two poll intervals (1 s at the emulator's 500 ms)
    emulator.script(Plan.slow(2, Plan.message("Finally.")))
    with OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0, timeout=0.2) as impatient:
        # When a client does not wait that long, it times out
        with pytest.raises(openai.APITimeoutError):
            complete(impatient, [{"role": "user", "content": "hi"}])
        # while the emulator goes on answering other calls at once
        assert complete(impatient, [{"role": "user", "content": "hi"}]).choices[0].finish_reason == "stop"


def test_a_never_finishing_turn_holds_the_call_until_reset(emulator: EmulatorServer) -> None:
    emulator.script(Plan.never_finishes())
    client = OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0, timeout=0.3)
    with client, pytest.raises(openai.APITimeoutError):
        complete(client, [{"role": "user", "content": "hi"}])
    # The held call's exchange would belong to no test once the emulator is reset.
    emulator.reset()
    assert emulator.exchanges == []
