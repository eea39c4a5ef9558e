"""Scripted turns and HTTP failures, through the real openai SDK (exchanges checked against the contract)."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from local.emulator import EmulatorServer, Plan


def run(client: OpenAI, conversation_id: str, text: str = "hi") -> Response:
    return client.responses.create(
        model="gpt-4.1-mini", conversation=conversation_id, input=text, background=True
    )


def statuses(client: OpenAI, response_id: str, polls: int) -> list[str | None]:
    return [client.responses.retrieve(response_id).status for _ in range(polls)]


def test_plans_are_used_in_order_then_the_demo_policy_answers(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(
        Plan.tool_calls([("get_table_schema", {"table": "sales"}), ("lookup", {"id": 7})]),
        Plan.message("Scripted answer."),
    )
    assert emulator.pending_plans == 2

    first = openai_client.responses.create(model="m", input="q")
    assert [
        (item.name, json.loads(item.arguments)) for item in first.output if item.type == "function_call"
    ] == [
        ("get_table_schema", {"table": "sales"}),
        ("lookup", {"id": 7}),
    ]
    assert openai_client.responses.create(model="m", input="q").output_text == "Scripted answer."
    assert emulator.pending_plans == 0
    assert openai_client.responses.create(model="m", input="q").output_text.startswith("You asked")


def test_fail_plan_ends_the_response_failed_with_the_error(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.fail(code="server_error", message="The model crashed."))
    response = run(openai_client, conversation.id, "hello")

    final = statuses(openai_client, response.id, 2)[-1]
    failed = openai_client.responses.retrieve(response.id)
    assert (final, failed.status) == ("failed", "failed")
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == ("server_error", "The model crashed.")
    assert failed.output == []
    # The user message reached the conversation; no answer did
    items = openai_client.conversations.items.list(conversation.id).data
    assert [item.type for item in items] == ["message"]


def test_incomplete_plan_carries_the_reason_and_partial_text(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.incomplete(reason="max_output_tokens", text="The totals are"))
    response = openai_client.responses.create(model="m", input="q")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "The totals are"


def test_slow_plan_stays_running_for_the_given_polls(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.slow(polls=3, then=Plan.message("Finally.")))
    response = run(openai_client, conversation.id)
    assert statuses(openai_client, response.id, 4) == ["in_progress"] * 3 + ["completed"]
    assert openai_client.responses.retrieve(response.id).output_text == "Finally."


def test_slow_zero_finishes_on_the_first_poll(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.slow(polls=0, then=Plan.message("At once.")))
    response = run(openai_client, conversation.id)
    assert statuses(openai_client, response.id, 1) == ["completed"]


def test_rate_limit_is_a_429_with_retry_after(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(Plan.http_error(429, "rate_limit_exceeded", retry_after_ms=1500))
    with pytest.raises(openai.RateLimitError) as limited:
        openai_client.responses.create(model="m", input="q")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    # Only that one call failed
    assert openai_client.responses.create(model="m", input="q").status == "completed"


def test_insufficient_quota_is_a_429_without_retry_after(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.http_error(429, "insufficient_quota"))
    with pytest.raises(openai.RateLimitError) as refused:
        openai_client.responses.create(model="m", input="q")
    assert (refused.value.code, refused.value.type) == ("insufficient_quota", "insufficient_quota")
    assert "retry-after" not in refused.value.response.headers


def test_the_sdk_retries_a_rate_limit_on_its_own(emulator: EmulatorServer) -> None:
    # Why the engine turns SDK retries off for creates: each retry is another create call upstream.
    emulator.script(Plan.http_error(429, "rate_limit_exceeded", times=2, retry_after_ms=10))
    with OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=2) as retrying:
        assert retrying.responses.create(model="m", input="q").status == "completed"
    creates = [exchange.status for exchange in emulator.exchanges if exchange.method == "POST"]
    assert creates == [429, 429, 200]


def test_http_errors_on_retrieve_leave_creates_alone(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.http_error(500, None, on="retrieve"))
    response = run(openai_client, conversation.id)
    with pytest.raises(openai.InternalServerError):
        openai_client.responses.retrieve(response.id)
    # The failed poll did not move the response along
    assert statuses(openai_client, response.id, 2) == ["in_progress", "completed"]


def test_http_errors_on_cancel(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.never_finishes(), Plan.http_error(503, None, on="cancel"))
    response = run(openai_client, conversation.id)
    with pytest.raises(openai.InternalServerError):
        openai_client.responses.cancel(response.id)
    assert openai_client.responses.cancel(response.id).status == "cancelled"


def test_reset_forgets_everything(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    conversation = openai_client.conversations.create()
    emulator.script(Plan.message("unused"), Plan.http_error(on="retrieve"))
    emulator.reset()
    assert (emulator.pending_plans, emulator.exchanges) == (0, [])
    with pytest.raises(openai.NotFoundError):
        openai_client.conversations.retrieve(conversation.id)


def test_plan_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Plan.slow(polls=-1, then=Plan.message("x"))
    with pytest.raises(ValueError):
        Plan.http_error(times=0)
    with pytest.raises(TypeError):
        EmulatorServer().script("not a plan")  # type: ignore[arg-type]


def test_a_response_that_stays_queued_holds_its_conversation_until_cancelled(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a response the upstream never picks up
    conversation = openai_client.conversations.create()
    emulator.script(Plan.stays_queued())
    response = run(openai_client, conversation.id)
    # Then it stays queued, poll after poll, and the conversation takes no other response
    assert statuses(openai_client, response.id, 3) == ["queued"] * 3
    with pytest.raises(openai.BadRequestError, match="conversation"):
        run(openai_client, conversation.id)
    # until it is cancelled
    assert openai_client.responses.cancel(response.id).status == "cancelled"
    assert run(openai_client, conversation.id).status == "queued"


def test_malformed_json_answers_a_call_with_a_body_cut_short(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.malformed_json(on="create"))
    with pytest.raises(json.JSONDecodeError):
        openai_client.responses.create(model="m", input="q")
    # the next call is answered as usual, and the log marks the fault (it is off the contract on purpose)
    assert openai_client.responses.create(model="m", input="q").status == "completed"
    assert [exchange.fault for exchange in emulator.exchanges] == [True, False]


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's Assistants methods
def test_a_threads_runs_are_listed_newest_first_with_their_metadata(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    assistant = openai_client.beta.assistants.create(model="gpt-4.1-mini")
    thread = openai_client.beta.threads.create()
    first = openai_client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, metadata={"threadrunner_run_id": "run_1"}
    )
    openai_client.beta.threads.runs.cancel(first.id, thread_id=thread.id)
    second = openai_client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, metadata={"threadrunner_run_id": "run_2"}
    )
    listed = openai_client.beta.threads.runs.list(thread.id, limit=10).data
    assert [(r.id, r.metadata) for r in listed] == [
        (second.id, {"threadrunner_run_id": "run_2"}),
        (first.id, {"threadrunner_run_id": "run_1"}),
    ]
    assert listed[1].status == "cancelled"  # the cancel landed when the thread took the new run
