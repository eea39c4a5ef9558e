"""The emulator's default model with any assistant, through the real openai SDK and without a script: a
custom assistant's two tools called with arguments their schemas accept, their outputs quoted in the answer,
on the Responses, Chat Completions and Assistants v2 APIs; a CSV given to the code interpreter analysed.

Every exchange is validated against the OpenAI OpenAPI description (the ``emulator`` fixture does it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI

from local.emulator import EmulatorServer
from local.emulator.analysis import CHART_NAME, SUMMARY_NAME, analyse_csv

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's Assistants calls

QUESTION = "What's the weather in Lisbon, and which stations report it?"
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
        },
        "required": ["city", "units"],
        "additionalProperties": False,
    },
}
STATIONS = {
    "name": "list_weather_stations",
    "description": "Weather stations near a place, nearest first.",
    "parameters": {
        "type": "object",
        "properties": {
            "place": {"type": "string"},
            "radius_km": {"type": "number", "exclusiveMinimum": 0, "maximum": 50},
            "kinds": {"type": "array", "items": {"enum": ["airport", "city"]}, "minItems": 1},
        },
        "required": ["place", "radius_km", "kinds"],
        "additionalProperties": False,
    },
}
FUNCTIONS = [WEATHER, STATIONS]
SCHEMAS = {function["name"]: function["parameters"] for function in FUNCTIONS}
OUTPUTS = {
    "get_weather": {"temperature_c": 19, "sky": "clear"},
    "list_weather_stations": ["LPPT", "Lisboa/Geof"],
}
SALES_CSV = b"region,orders,total\nNorth,7,1234.5\nSouth,2,99\nWest,5,640.25\n"


def _check_calls(calls: list[tuple[str, str]]) -> None:
    """Both tools, once each, with arguments their schemas accept."""
    assert [name for name, _ in calls] == ["get_weather", "list_weather_stations"]
    for name, arguments in calls:
        parsed = json.loads(arguments)
        assert list(Draft202012Validator(SCHEMAS[name]).iter_errors(parsed)) == [], (name, parsed)
    assert json.loads(calls[0][1])["city"] == "Lisbon"


def _check_answer(text: str) -> None:
    for name, output in OUTPUTS.items():
        assert f"{name} returned {json.dumps(output)}" in text, text


def test_responses_a_custom_assistant_calls_both_tools_and_quotes_their_outputs(
    openai_client: OpenAI,
) -> None:
    # Given a conversation with an assistant whose tools the emulator has never seen
    conversation = openai_client.conversations.create()
    tools: Any = [{"type": "function", "strict": True, **function} for function in FUNCTIONS]
    # When the question is asked, the model calls both tools
    first = openai_client.responses.create(
        model="gpt-4.1-mini", conversation=conversation.id, input=QUESTION, tools=tools
    )
    calls = [item for item in first.output if item.type == "function_call"]
    _check_calls([(call.name, call.arguments) for call in calls])
    # Then, given their outputs, it answers quoting them
    outputs: Any = [
        {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(OUTPUTS[call.name])}
        for call in calls
    ]
    second = openai_client.responses.create(
        model="gpt-4.1-mini", conversation=conversation.id, input=outputs, tools=tools
    )
    assert second.status == "completed"
    _check_answer(second.output_text)


def test_chat_a_custom_assistant_calls_both_tools_and_quotes_their_outputs(openai_client: OpenAI) -> None:
    tools: Any = [{"type": "function", "function": function} for function in FUNCTIONS]
    messages: list[Any] = [
        {"role": "system", "content": "You report the weather."},
        {"role": "user", "content": QUESTION},
    ]
    first = openai_client.chat.completions.create(model="m", messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls or []
    _check_calls([(call.function.name, call.function.arguments) for call in calls])  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True, exclude={"annotations"}),
        *(
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(OUTPUTS[call.function.name])}  # type: ignore[union-attr]
            for call in calls
        ),
    ]
    second = openai_client.chat.completions.create(model="m", messages=messages, tools=tools)
    assert second.choices[0].finish_reason == "stop"
    _check_answer(second.choices[0].message.content or "")


def test_assistants_a_custom_assistant_calls_both_tools_and_quotes_their_outputs(
    openai_client: OpenAI,
) -> None:
    assistant = openai_client.beta.assistants.create(
        model="gpt-4.1-mini",
        instructions="You report the weather.",
        tools=[{"type": "function", "function": f} for f in FUNCTIONS],  # type: ignore[misc]
    )
    thread = openai_client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    run = openai_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=0
    )
    assert run.status == "requires_action" and run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    _check_calls([(call.function.name, call.function.arguments) for call in calls])
    done = openai_client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": json.dumps(OUTPUTS[c.function.name])} for c in calls],
        poll_interval_ms=0,
    )
    assert done.status == "completed"
    answer = openai_client.beta.threads.messages.list(thread.id, limit=1).data[0]
    _check_answer(answer.content[0].text.value)  # type: ignore[union-attr]


def test_responses_a_csv_given_to_the_code_interpreter_is_analysed_without_a_script(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a CSV uploaded and handed to the code interpreter's new container, and no script
    upload = openai_client.files.create(file=("sales.csv", SALES_CSV), purpose="user_data")
    tools: Any = [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [upload.id]}}]
    # When the model is asked about it
    response = openai_client.responses.create(model="gpt-4.1-mini", input="Chart my data", tools=tools)
    # Then it analysed the CSV and cites the chart and the summary it wrote in the container
    assert emulator.pending_plans == 0
    assert [item.type for item in response.output] == ["code_interpreter_call", "message"]
    message = response.output[1].model_dump()
    citations = message["content"][0]["annotations"]
    assert [c["filename"] for c in citations] == [CHART_NAME, SUMMARY_NAME]
    expected = analyse_csv(SALES_CSV)
    for citation, data in zip(citations, (expected.chart, expected.summary), strict=True):
        content = openai_client.containers.files.content.retrieve(
            citation["file_id"], container_id=citation["container_id"]
        )
        assert content.read() == data


def test_assistants_a_csv_attached_for_the_code_interpreter_is_analysed_without_a_script(
    openai_client: OpenAI,
) -> None:
    upload = openai_client.files.create(file=("sales.csv", SALES_CSV), purpose="assistants")
    assistant = openai_client.beta.assistants.create(
        model="gpt-4.1-mini", tools=[{"type": "code_interpreter"}]
    )
    thread = openai_client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Chart my data",
                "attachments": [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    run = openai_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=0
    )
    assert run.status == "completed"
    answer = openai_client.beta.threads.messages.list(thread.id, limit=1).data[0]
    parts = [part.type for part in answer.content]
    assert parts == ["image_file", "text"]
    chart = openai_client.files.content(answer.content[0].image_file.file_id).read()  # type: ignore[union-attr]
    assert chart == analyse_csv(SALES_CSV).chart
    summary_id = answer.content[1].text.annotations[0].file_path.file_id  # type: ignore[union-attr]
    assert openai_client.files.content(summary_id).read() == analyse_csv(SALES_CSV).summary
