"""Tool failures are the model's business: they reach it as outputs and the run goes on."""

from __future__ import annotations

import json

import httpx

from local.emulator import EmulatorServer, Plan
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
