"""Tool failures are the model's business: they reach it as outputs and the run goes on, whether the tool
refused, or its Lambda was killed, could not start or failed in any other way."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import tool_steps

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run


def test_refused_and_unknown_tool_calls_become_error_outputs_and_the_run_completes(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    # Given a model that tries a write, a system catalog and a tool that does not exist
    upstream.script(
        Plan.tool_calls(
            [
                ("query_database", {"query": "DELETE FROM sales"}),
                ("query_database", {"query": "SELECT * FROM sqlite_master"}),
                ("drop_everything", {}),
                ("query_database", {"query": "SELECT COUNT(*) AS n FROM customers"}),
            ]
        ),
        Plan.message("I could only count the customers."),
    )
    thread = new_thread(alice, "hostile-model")
    # When the run goes through
    run = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go"}).json()["id"]
    )
    # Then it completes, and the model got an output for every call
    assert run["status"] == "completed", run
    assert run["answer"] == "I could only count the customers."
    outputs = [json.loads(call["output"]) for call in run["tool_calls"]]
    assert "only SELECT" in outputs[0]["error"] or "not allowed" in outputs[0]["error"]
    assert "sqlite_master" in outputs[1]["error"]
    assert "unknown tool" in outputs[2]["error"]
    assert outputs[3]["rows"][0][0] > 0
    submitted = [
        item
        for exchange in upstream.exchanges
        if exchange.method == "POST" and exchange.path == "/v1/responses"
        for item in exchange.request_json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert len(submitted) == 4


def _outputs_the_model_got(upstream: EmulatorServer, run: dict[str, Any]) -> dict[str, Any]:
    """tool name -> the output of the run's call of it (parsed JSON), after checking that it is what the
    model was handed."""
    submitted = [
        json.loads(item["output"])
        for exchange in upstream.exchanges
        if exchange.method == "POST" and exchange.path == "/v1/responses"
        for item in exchange.request_json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    recorded = {call["name"]: json.loads(call["output"]) for call in run["tool_calls"]}
    assert sorted(map(json.dumps, submitted)) == sorted(map(json.dumps, recorded.values()))
    return recorded


def _ask_schema_and_count(alice: httpx.Client, upstream: EmulatorServer, purpose: str) -> dict[str, Any]:
    """A run whose model asks for the sales schema and a count of customers, then answers."""
    upstream.script(
        Plan.tool_calls(
            [
                ("get_table_schema", {"table": "sales"}),
                ("query_database", {"query": "SELECT COUNT(*) AS n FROM customers"}),
            ]
        ),
        Plan.message("I counted the customers; the schema tool failed."),
    )
    thread = new_thread(alice, purpose)
    posted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go"})
    return wait_for_run(alice, posted.json()["id"])


# How Lambda reports a function it killed: past its timeout, or its process exited (out of memory, a crash).
@pytest.mark.parametrize("death", ["Sandbox.Timedout", "Runtime.ExitError"])
def test_a_tool_lambda_killed_every_time_gives_the_model_an_error_and_the_run_completes(
    alice: httpx.Client, upstream: EmulatorServer, monkeypatch: pytest.MonkeyPatch, death: str
) -> None:
    # Given a schema tool whose Lambda is killed whenever it runs the tool (the local dispatch names the
    # Lambda error after the exception's type)
    killed = type(death, (Exception,), {})
    ran: list[str] = []
    call_tool = tool_steps.call_tool

    def dies_in_the_schema_tool(name: str, arguments: str, context: Any) -> Any:
        if name == "get_table_schema":
            ran.append(name)
            raise killed("the Lambda was killed")
        return call_tool(name, arguments, context)

    monkeypatch.setattr(tool_steps, "call_tool", dies_in_the_schema_tool)
    # When a run asks for it, and for a working tool
    run = _ask_schema_and_count(alice, upstream, f"killed-{death}")
    # Then the run completes; the tool ran twice, never a third time; the model got an error for it
    assert run["status"] == "completed", run
    assert len(ran) == tool_steps.MAX_TOOL_ATTEMPTS
    outputs = _outputs_the_model_got(upstream, run)
    assert outputs["get_table_schema"] == {
        "error": "the tool get_table_schema did not finish after 2 attempts"
    }
    assert outputs["query_database"]["rows"][0][0] > 0
    assert run["metrics"]["tool_errors"] == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        # its INIT fails (a broken deploy): every invocation, before any of our code runs
        ("Runtime.ImportModuleError", "the tool get_table_schema could not be started"),
        # the step itself fails after the tool ran (here: storing the output), an error no retry covers
        ("ProvisionedThroughputExceededException", "the tool get_table_schema stopped without an output"),
    ],
)
def test_a_tool_lambda_that_fails_otherwise_gives_the_model_an_error_and_the_run_completes(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    error: str,
) -> None:
    # Given a schema tool Lambda that fails as ``failure`` on every invocation
    if failure == "Runtime.ImportModuleError":
        handler = local_stack.lambdas._handler

        def cannot_start(folder: str) -> Any:
            if folder == "tool_get_table_schema":
                raise ImportError("No module named 'sqlglot'")
            return handler(folder)

        monkeypatch.setattr(local_stack.lambdas, "_handler", cannot_start)
    else:
        save_output = ToolCallLedger.save_output
        throttled = type(failure, (Exception,), {})

        def fails_for_the_schema_tool(ledger: ToolCallLedger, call: Any) -> Any:
            if call.name == "get_table_schema" and not call.is_error:
                raise throttled("Rate of requests exceeds the allowed throughput.")
            return save_output(ledger, call)

        monkeypatch.setattr(ToolCallLedger, "save_output", fails_for_the_schema_tool)
    # When a run asks for it, and for a working tool
    run = _ask_schema_and_count(alice, upstream, f"fails-{failure}")
    # Then the run completes, and the model got an error output for the failed call only
    assert run["status"] == "completed", run
    outputs = _outputs_the_model_got(upstream, run)
    assert outputs["get_table_schema"]["error"].startswith(error), outputs
    assert outputs["query_database"]["rows"][0][0] > 0
    assert run["metrics"]["tool_errors"] == 1
