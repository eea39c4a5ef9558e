"""Step Functions state stays small whatever the sizes: it carries ids, and text lives in DynamoDB and S3.

Each run here is read back from its execution history (the local stack's Step Functions), and every state
input, output and task result in it is measured.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from threadrunner.tools import registry

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

SMALL_STATE_BYTES = 16 * 1024
# 200 tool calls put 200 ids (call id, tool name, its Lambda's ARN) in the state Run tools maps over.
TOOL_CALL_STATE_BYTES = 200


def state_payloads(local_stack: LocalStack, execution_arn: str) -> Iterator[tuple[str, int]]:
    """(event type, size in bytes) of every payload the execution history holds."""
    client = local_stack.client("stepfunctions")
    for page in client.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            for key, details in event.items():
                if not key.endswith("EventDetails") or not isinstance(details, dict):
                    continue
                for field in ("input", "output", "result", "parameters"):
                    if isinstance(details.get(field), str):
                        yield event["type"], len(details[field].encode())


def largest_payload(local_stack: LocalStack, run: dict[str, Any]) -> int:
    sizes = [size for _, size in state_payloads(local_stack, run["execution"]["arn"])]
    assert len(sizes) > 10, "the execution history should show the states' payloads"
    return max(sizes)


def ask(alice: httpx.Client, purpose: str, message: str) -> dict[str, Any]:
    thread = new_thread(alice, purpose)
    created = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": message})
    assert created.status_code == 202, created.text
    return wait_for_run(alice, created.json()["id"], timeout=120)


class BigResult(BaseModel):
    text: str


def replace_schema_tool(monkeypatch: pytest.MonkeyPatch, answer: Callable[[Any], str]) -> None:
    """get_table_schema answers ``answer(arguments)`` (the tool Lambdas run in this process)."""
    schema_tool = registry.TOOLS["get_table_schema"]
    monkeypatch.setitem(
        registry.TOOLS,
        "get_table_schema",
        dataclasses.replace(schema_tool, run=lambda arguments, context: BigResult(text=answer(arguments))),
    )


@pytest.fixture
def megabyte_tool(monkeypatch: pytest.MonkeyPatch) -> str:
    text = "0123456789abcdef" * 65_536
    replace_schema_tool(monkeypatch, lambda arguments: text)
    return text


def test_a_one_megabyte_tool_output_reaches_the_model_cut_and_is_kept_whole(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack, megabyte_tool: str
) -> None:
    # Given a tool that answers 1 MB
    upstream.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("Big."))
    # When a run uses it
    run = ask(alice, "big-tool", "describe sales")
    # Then the run completes, and the model got the output cut to the setting, with the marker
    assert run["status"] == "completed", run
    submitted = [
        item["output"]
        for exchange in upstream.exchanges
        if exchange.method == "POST" and exchange.path == "/v1/responses"
        for item in exchange.request_json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert len(submitted) == 1 and len(submitted[0]) <= 16_000
    assert "truncated_output" in json.loads(submitted[0])
    # and the whole output is kept in S3, by reference from the tool-call ledger
    runs = local_stack.client("dynamodb")
    call = runs.query(
        TableName="threadrunner-local-runs",
        KeyConditionExpression="run_id = :r AND begins_with(sk, :c)",
        ExpressionAttributeValues={":r": {"S": run["id"]}, ":c": {"S": "call#"}},
    )["Items"][0]
    key = call["full_output_key"]["S"]
    body = local_stack.client("s3").get_object(Bucket="threadrunner-local-files", Key=key)["Body"].read()
    assert json.loads(body) == {"text": megabyte_tool}
    # and no state of the execution came near the 256 KiB limit
    assert largest_payload(local_stack, run) < SMALL_STATE_BYTES


def test_a_300_kb_user_message_is_accepted_and_kept_out_of_the_state(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given a 300 KB message
    message = "Summarise this log: " + "x" * 300 * 1024
    upstream.script(Plan.message("Summarised."))
    # When a user sends it
    run = ask(alice, "long-message", message)
    # Then the run completes, the model got the whole message, and the thread's log keeps it
    assert run["status"] == "completed", run
    created = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert created[0].request_json["input"][0]["content"] == message
    log = alice.get(f"/v1/threads/{run['thread_id']}/messages").json()["messages"]
    assert log[0]["content"] == message
    assert largest_payload(local_stack, run) < SMALL_STATE_BYTES


def test_a_message_over_the_limit_is_refused_naming_the_field(alice: httpx.Client) -> None:
    thread = new_thread(alice, "too-long")
    refused = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "x" * 400_001})
    assert refused.status_code == 422
    assert refused.json()["field"] == "message"


def test_a_run_with_200_tool_calls_completes_with_ids_only_in_the_state(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model that asks for 200 tool calls at once (of a quick tool: the workflow is under test here)
    replace_schema_tool(monkeypatch, lambda arguments: arguments.table)
    upstream.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})] * 200), Plan.message("Done."))
    # When the run goes through
    run = ask(alice, "many-tools", "describe sales 200 times")
    # Then it completes with every call answered
    assert run["status"] == "completed", run
    assert len(run["tool_calls"]) == 200
    assert {call["output"] for call in run["tool_calls"]} == {'{"text":"sales"}'}
    # and the state only ever held the calls' ids: its size grows with the calls, never with their outputs
    assert largest_payload(local_stack, run) < SMALL_STATE_BYTES + 200 * TOOL_CALL_STATE_BYTES
