"""Tool outputs as a client reads them (GET /v1/runs/{id}, the thread's message log): valid JSON, and a long
one says it was cut (``output_truncated``, and ``{"truncated": true, "preview", "size_chars"}`` in place of
the output), while the model got it whole."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from threadrunner.tools import registry

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import new_thread, wait_for_run

SCHEMA = ("get_table_schema", {"table": "sales"})
COUNT = ("query_database", {"query": "SELECT COUNT(*) AS n FROM sales"})


class _Schema(BaseModel):
    text: str


@pytest.fixture
def long_schema(monkeypatch: pytest.MonkeyPatch) -> str:
    """get_table_schema answers 2,000 characters with quotes in them: over the summary, under the model's cap."""
    text = 'column "amount" numeric; ' * 80
    tool = registry.TOOLS["get_table_schema"]
    monkeypatch.setitem(
        registry.TOOLS,
        "get_table_schema",
        dataclasses.replace(tool, run=lambda arguments, context: _Schema(text=text)),
    )
    return _Schema(text=text).model_dump_json()


def _ask(
    alice: httpx.Client, upstream: EmulatorServer, purpose: str, call: tuple[str, dict[str, Any]] = SCHEMA
) -> dict[str, Any]:
    upstream.script(Plan.tool_calls([call]), Plan.message("Done."))
    thread = new_thread(alice, purpose)
    accepted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "describe sales"})
    assert accepted.status_code == 202, accepted.text
    return wait_for_run(alice, accepted.json()["id"])


def test_a_long_tool_output_is_shown_as_valid_json_that_says_it_was_cut(
    alice: httpx.Client, upstream: EmulatorServer, long_schema: str
) -> None:
    # Given a tool whose output is longer than a summary, when a run uses it
    run = _ask(alice, upstream, "long-tool-output")
    assert run["status"] == "completed", run
    # Then the run shows valid JSON saying it was cut, how long the output was, and its start
    (call,) = run["tool_calls"]
    assert call["output_truncated"] is True
    shown = json.loads(call["output"])
    assert shown["truncated"] is True and shown["size_chars"] == len(long_schema)
    assert long_schema.startswith(shown["preview"]) and len(call["output"]) <= 500
    # and the thread's log shows the same, flagged on its tool call
    messages = alice.get(f"/v1/threads/{run['thread_id']}/messages").json()["messages"]
    (logged,) = [m for m in messages if m["role"] == "tool"]
    assert logged["content"] == call["output"] and logged["tool_call"]["output_truncated"] is True
    # while the model got the whole output
    submitted = [
        item["output"]
        for exchange in upstream.exchanges
        if exchange.method == "POST" and exchange.path == "/v1/responses"
        for item in exchange.request_json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert submitted == [long_schema]


def test_a_short_tool_output_is_shown_whole_and_not_flagged(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    run = _ask(alice, upstream, "short-tool-output", COUNT)
    (call,) = run["tool_calls"]
    assert call["output_truncated"] is False and "columns" in json.loads(call["output"])
    messages = alice.get(f"/v1/threads/{run['thread_id']}/messages").json()["messages"]
    (logged,) = [m for m in messages if m["role"] == "tool"]
    assert logged["content"] == call["output"] and logged["tool_call"]["output_truncated"] is False
