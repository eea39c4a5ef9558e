"""The Assistants-v2-compatible API (/compat/v1) driven by the official ``openai`` SDK, as an application
written for the Assistants API drives it: only ``base_url`` and the key (the user's JWT) change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import openai
import pytest
from openai import OpenAI

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.emulator.exchange import Exchange
from local.stack import LocalStack
from tests.support.openai_contract import validate_exchange

# The SDK marks every Assistants method deprecated (OpenAI's hosted API is gone): this API is what replaces it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def sdk_for(local_stack: LocalStack, user: str) -> Iterator[OpenAI]:
    """The SDK as an Assistants application has it, for ``user``; every exchange is checked against OpenAI's
    OpenAPI document afterwards (the facade's paths are the document's, under /compat)."""
    exchanges: list[Exchange] = []

    def record(response: Any) -> None:
        response.read()
        request = response.request
        exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path.removeprefix("/compat"),
                query=parse_qs(request.url.query.decode()),
                request_headers={k.lower(): v for k, v in request.headers.items()},
                request_body=request.content,
                status=response.status_code,
                response_headers={k.lower(): v for k, v in response.headers.items()},
                response_body=response.content,
            )
        )

    # A request is read before it goes (a multipart upload streams), so that its body can be checked too.
    http = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda request: request.read()], "response": [record]}
    )
    with OpenAI(
        base_url=f"{local_stack.api_url}/compat/v1",
        api_key=issue_token(user),
        max_retries=0,
        http_client=http,
    ) as client:
        yield client
    problems = []
    for exchange in exchanges:
        try:
            validate_exchange(exchange)
        except AssertionError as mismatch:
            problems.append(str(mismatch))
    assert exchanges and not problems, "\n".join(problems)


@pytest.fixture
def sdk(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[OpenAI]:
    yield from sdk_for(local_stack, "alice")


@pytest.fixture
def budget_sdk(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[OpenAI]:
    yield from sdk_for(local_stack, "compat-budget-user")


@pytest.fixture
def bob_sdk(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[OpenAI]:
    yield from sdk_for(local_stack, "bob")


def test_a_function_tool_is_answered_by_the_client_through_requires_action(
    sdk: OpenAI, upstream: EmulatorServer
) -> None:
    # Given an assistant with a function tool, and a model that calls it, then answers
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("Sunny in Paris."))
    assistant = sdk.beta.assistants.create(
        model="gpt-4.1-mini", name="Weather", instructions="Help.", tools=[WEATHER]
    )  # type: ignore[list-item]
    thread = sdk.beta.threads.create()
    sdk.beta.threads.messages.create(thread.id, role="user", content="Weather in Paris?")
    # When the run is created and polled
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    # Then it waits for the client's tool output, as the Assistants API did
    assert run.status == "requires_action", run
    assert run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    # When the client answers
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
        poll_interval_ms=100,
    )
    # Then the run completes with its usage, and the answer is the thread's newest message
    assert run.status == "completed", run
    assert run.usage is not None and run.usage.total_tokens > 0
    messages = sdk.beta.threads.messages.list(thread.id)
    assert [m.role for m in messages.data] == ["assistant", "user"]
    assert messages.data[0].content[0].text.value == "Sunny in Paris."  # type: ignore[union-attr]
    assert [m.role for m in sdk.beta.threads.messages.list(thread.id, order="asc").data] == [
        "user",
        "assistant",
    ]
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    assert [step.type for step in steps.data] == ["tool_calls", "message_creation"]
    answer_step = steps.data[-1].step_details
    assert answer_step.type == "message_creation"
    assert answer_step.message_creation.message_id == messages.data[0].id  # the step names the answer


def test_a_thread_is_reused_across_runs_and_another_users_ids_are_not_found(
    sdk: OpenAI, bob_sdk: OpenAI, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.message("One."), Plan.message("Two."))
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Count.")
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "first"}], metadata={"app": "demo"}
    )
    first = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    second = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_messages=[{"role": "user", "content": "second"}],
        poll_interval_ms=100,
    )
    assert (first.status, second.status) == ("completed", "completed")
    texts = [m.content[0].text.value for m in sdk.beta.threads.messages.list(thread.id, order="asc").data]  # type: ignore[union-attr]
    assert texts == ["first", "One.", "second", "Two."]
    assert sdk.beta.threads.retrieve(thread.id).metadata == {"app": "demo"}
    # Another user's ids: not found, as typed SDK errors
    with pytest.raises(openai.NotFoundError):
        bob_sdk.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        bob_sdk.beta.assistants.retrieve(assistant.id)
    with pytest.raises(openai.NotFoundError):
        bob_sdk.beta.threads.runs.retrieve(first.id, thread_id=thread.id)
    uploaded = sdk.files.create(file=("notes.txt", b"alice's notes", "text/plain"), purpose="assistants")
    with pytest.raises(openai.NotFoundError):
        bob_sdk.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        bob_sdk.files.content(uploaded.id)
    bobs_thread = bob_sdk.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as not_bobs:
        bob_sdk.beta.threads.messages.create(
            bobs_thread.id,
            role="user",
            content="read this",
            attachments=[{"file_id": uploaded.id, "tools": [{"type": "code_interpreter"}]}],
        )
    assert not_bobs.value.body["param"] == "attachments[0].file_id"  # type: ignore[index]


def test_bad_input_is_refused_as_the_assistants_api_did(sdk: OpenAI, upstream: EmulatorServer) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        sdk.beta.assistants.create(model="gpt-4.1-mini", extra_body={"colour": "blue"})
    assert unknown.value.body["param"] == "colour"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.create(thread_id="thread_nope", assistant_id="asst_nope")
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_nope")
    assert missing.value.body["param"] == "assistant_id"  # type: ignore[index]


def test_a_run_is_cancelled_and_refusals_name_what_is_wrong(sdk: OpenAI, upstream: EmulatorServer) -> None:
    # Given a run that never finishes
    upstream.script(Plan.never_finishes())
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Wait.", tools=[WEATHER])  # type: ignore[list-item]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "take your time"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    # Then the thread takes no other run, nor messages, while it is active
    with pytest.raises(openai.BadRequestError):
        sdk.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "x"}],
        )
    with pytest.raises(openai.BadRequestError):
        sdk.beta.threads.messages.create(thread.id, role="user", content="more")
    # and tool outputs for a run that does not wait for them are refused
    with pytest.raises(openai.BadRequestError):
        sdk.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_x", "output": "x"}]
        )
    # When it is cancelled, Then it ends cancelled
    cancelling = sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in ("cancelling", "cancelled")
    ended = sdk.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    with pytest.raises(openai.BadRequestError):
        sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_missing_tool_outputs_are_refused_naming_the_parameter(sdk: OpenAI, upstream: EmulatorServer) -> None:
    upstream.script(
        Plan.tool_calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]),
        Plan.message("Both sunny."),
    )
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Help.", tools=[WEATHER])  # type: ignore[list-item]
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Paris and Rome?"}]},
        poll_interval_ms=100,
    )
    assert run.status == "requires_action" and run.required_action is not None
    first, second = run.required_action.submit_tool_outputs.tool_calls
    with pytest.raises(openai.BadRequestError) as missing:
        sdk.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": first.id, "output": "sunny"}]
        )
    assert missing.value.body["param"] == "tool_outputs"  # type: ignore[index]
    done = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"} for call in (first, second)],
        poll_interval_ms=100,
    )
    assert done.status == "completed"


def test_deleting_a_users_data_deletes_their_assistants_and_threads(
    sdk: OpenAI, client_for: Any, upstream: EmulatorServer
) -> None:
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Hi.")
    thread = sdk.beta.threads.create(metadata={"k": "v"})
    assert sdk.beta.assistants.list().data[0].id == assistant.id
    assert client_for("alice").delete("/v1/users/me/data").status_code == 202
    assert sdk.beta.assistants.list().data == []
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.retrieve(thread.id)


CSV = b"region,amount\nnorth,120.5\nsouth,80\nnorth,30\n"


def test_a_csv_is_analysed_by_the_code_interpreter_and_the_chart_downloaded(
    sdk: OpenAI, upstream: EmulatorServer
) -> None:
    # Given a CSV uploaded as the Assistants API took files
    uploaded = sdk.files.create(file=("sales.csv", CSV, "text/csv"), purpose="assistants")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("sales.csv", len(CSV), "assistants")
    assert uploaded.id in [file.id for file in sdk.files.list().data]
    assert sdk.files.content(uploaded.id).read() == CSV
    # and an assistant with the code interpreter
    upstream.script(Plan.analyse_csv())
    assistant = sdk.beta.assistants.create(
        model="gpt-4.1-mini", instructions="Analyse.", tools=[{"type": "code_interpreter"}]
    )
    thread = sdk.beta.threads.create()
    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Chart the sales by region.",
        attachments=[{"file_id": uploaded.id, "tools": [{"type": "code_interpreter"}]}],
    )
    # When the run goes through
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    # Then the answer shows the chart, which downloads as a PNG
    assert run.status == "completed", run
    answer = sdk.beta.threads.messages.list(thread.id).data[0]
    images = [part.image_file.file_id for part in answer.content if part.type == "image_file"]
    assert len(images) == 1
    assert sdk.files.content(images[0]).read().startswith(b"\x89PNG")
    assert sdk.files.retrieve(images[0]).filename.endswith(".png")
    # and the upload can be deleted
    assert sdk.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)


def test_a_runs_own_tools_replace_its_assistants(sdk: OpenAI, upstream: EmulatorServer) -> None:
    # Given an assistant without tools, and a run given the weather tool
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Rome"})]), Plan.message("Warm in Rome."))
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Help.")
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Weather in Rome?"}]},
        tools=[WEATHER],  # type: ignore[list-item]
        poll_interval_ms=100,
    )
    # Then the model was offered it, and its call waits for the application
    assert run.status == "requires_action" and run.required_action is not None
    assert [tool.type for tool in run.tools] == ["function"]
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert [tool["name"] for tool in creates[-1].request_json["tools"] if tool["type"] == "function"] == [
        "get_weather"
    ]
    [call] = run.required_action.submit_tool_outputs.tool_calls
    done = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "warm"}],
        poll_interval_ms=100,
    )
    assert done.status == "completed"


def test_a_streamed_run_stops_for_tool_outputs_and_streams_its_answer(
    sdk: OpenAI, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("Sunny in Paris."))
    assistant = sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Help.", tools=[WEATHER])  # type: ignore[list-item]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    # When the run is streamed (the SDK's helper), Then it stops where the application's tool must answer
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        run = stream.current_run
    assert run is not None and run.status == "requires_action" and run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    # When the outputs go back streamed, Then the answer's text comes as deltas and the run ends completed
    with sdk.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    ) as stream:
        text = "".join(stream.text_deltas)
        ended = stream.current_run
    assert text == "Sunny in Paris."
    assert ended is not None and ended.status == "completed"


def test_a_document_attached_for_file_search_is_searched_with_a_citation(
    sdk: OpenAI, upstream: EmulatorServer
) -> None:
    # Given an assistant with file_search and a document attached for it
    document = (
        b"# Parking\n\nEvery employee may park in garage B; the parking badge costs 12 euros a month.\n"
    )
    uploaded = sdk.files.create(file=("parking.md", document, "text/markdown"), purpose="assistants")
    assistant = sdk.beta.assistants.create(
        model="gpt-4.1-mini", instructions="Answer from the documents.", tools=[{"type": "file_search"}]
    )
    thread = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How much does the parking badge cost?",
                "attachments": [{"file_id": uploaded.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    # When the run goes through
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    # Then the model searched the thread's store, and answered from the document
    assert run.status == "completed", run
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert any(tool["type"] == "file_search" for tool in creates[-1].request_json["tools"])
    answer = sdk.beta.threads.messages.list(thread.id).data[0]
    assert "12 euros" in answer.content[-1].text.value  # type: ignore[union-attr]
    # and an attachment for a tool that reads no file is refused, naming it
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.beta.threads.messages.create(
            thread.id,
            role="user",
            content="again",
            attachments=[{"file_id": uploaded.id, "tools": [{"type": "web_search"}]}],  # type: ignore[list-item]
        )
    assert refused.value.body["param"] == "attachments[0].tools[0].type"  # type: ignore[index]


@pytest.mark.parametrize("body", [b"\xff\xfe", b"not json", b"[]", b"null", b'{"model": 1}'])
def test_a_body_that_is_not_the_json_object_asked_for_is_a_400_never_a_500(
    local_stack: LocalStack, upstream: EmulatorServer, body: bytes
) -> None:
    refused = httpx.post(
        f"{local_stack.api_url}/compat/v1/assistants",
        content=body,
        headers={"Authorization": f"Bearer {issue_token('alice')}", "Content-Type": "application/json"},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_request_error"


def test_a_user_over_the_daily_budget_gets_the_quota_error_the_sdk_knows(
    budget_sdk: OpenAI, upstream: EmulatorServer, configure: Any
) -> None:
    # Given a daily token budget that one facade run crosses
    configure(THREADRUNNER_DAILY_TOKEN_BUDGET="50")
    upstream.script(Plan.message("A long answer " * 20))
    assistant = budget_sdk.beta.assistants.create(model="gpt-4.1-mini", instructions="Talk.")
    thread = budget_sdk.beta.threads.create(messages=[{"role": "user", "content": "Tell me everything."}])
    crossing = budget_sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    assert crossing.status == "completed" and crossing.usage is not None and crossing.usage.total_tokens > 50
    # When the user starts another run, Then it is refused as the upstream refuses a spent quota
    with pytest.raises(openai.RateLimitError) as refused:
        budget_sdk.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "more"}],
        )
    assert refused.value.code == "insufficient_quota"
    assert [m.role for m in budget_sdk.beta.threads.messages.list(thread.id).data] == ["assistant", "user"]
