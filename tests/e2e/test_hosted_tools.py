"""Hosted tools over HTTP on the local stack (threadrunner/hosted_tools.py): web_search's url_citations
become the run's citations; an MCP server's call that needs approval makes the run requires_action /
approve_tool_calls, and the decision goes back upstream as an mcp_approval_response (granted: the call runs
and its output is the run's tool call; denied: it never runs); an MCP server off the environment's
allow-list is refused with a 422 naming the assistant's key, never a failed run; the server's credentials
come from Secrets Manager and reach the MCP server only."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from threadrunner.settings import ToolSettings

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import start_run, wait_for_action, wait_for_run

SERVER_URL = "https://mcp.example.com/mcp"  # the emulator's fake MCP server
TOKEN = "mcp-token-e2e-0123456789"
SEARCHER = """\
name: web-searcher
instructions: Search the web and cite your sources.
web_search: true
"""
ORDERS = """\
name: order-desk
instructions: Help with orders.
mcp:
  - server_label: orders
    server_url: https://mcp.example.com/mcp
    allowed_tools: [lookup_order, cancel_order]
    require_approval: always
"""


@pytest.fixture
def assistants(tmp_path: Path, configure: Callable[..., None], local_stack: LocalStack) -> Path:
    folder = tmp_path / "assistants"
    shutil.copytree(ToolSettings().assistants_dir, folder)
    (folder / "web-searcher.yaml").write_text(SEARCHER)
    (folder / "order-desk.yaml").write_text(ORDERS)
    secret = f"threadrunner/local/mcp-orders-{time.monotonic_ns()}"
    local_stack.client("secretsmanager").create_secret(
        Name=secret, SecretString=json.dumps({"Authorization": f"Bearer {TOKEN}"})
    )
    configure(
        THREADRUNNER_ASSISTANTS_DIR=str(folder),
        THREADRUNNER_ENGINE="responses",
        THREADRUNNER_MCP_SERVERS=json.dumps(
            [{"server_label": "orders", "server_url": SERVER_URL, "secret_name": secret}]
        ),
    )
    return folder


def _events(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/runs/{run_id}/events", params={"after": 0})
    assert page.status_code == 200, page.text
    return list(page.json()["events"])


def _sent_items(upstream: EmulatorServer, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for exchange in upstream.exchanges:
        body = exchange.request_json if exchange.method == "POST" else None
        if isinstance(body, dict) and isinstance(body.get("input"), list):
            found += [item for item in body["input"] if isinstance(item, dict) and item.get("type") == kind]
    return found


def test_web_search_citations_are_the_runs_citations(
    alice: httpx.Client, upstream: EmulatorServer, assistants: Path
) -> None:
    # Given an assistant with web_search: true
    run_id = start_run(alice, "web-searcher", "web", "What is new in Python?")
    # When its run completes
    run = wait_for_run(alice, run_id)
    assert run["status"] == "completed", run
    # Then the request offered the web_search tool, and the answer's url_citations are the run's citations
    offered = [exchange.request_json for exchange in upstream.exchanges if exchange.method == "POST"]
    assert any({"type": "web_search"} in (body or {}).get("tools", []) for body in offered)
    urls = [(c["type"], c["url"]) for c in run["citations"]]
    assert ("url", "https://docs.python.org/3/") in urls
    assert all(c["title"] for c in run["citations"])


@pytest.mark.parametrize("approve", [True, False])
def test_an_mcp_call_waits_for_approval_and_the_decision_goes_back_upstream(
    alice: httpx.Client, upstream: EmulatorServer, assistants: Path, approve: bool
) -> None:
    # Given a model that calls an MCP tool needing approval
    upstream.script(Plan.mcp_call("cancel_order", {"order_id": "A1001"}))
    run_id = start_run(alice, "order-desk", f"mcp-{approve}", "Cancel order A1001")
    # When the run waits for the application
    action = wait_for_action(alice, run_id)["required_action"]
    assert action["type"] == "approve_tool_calls"
    [call] = action["tool_calls"]
    assert call["name"] == "cancel_order" and json.loads(call["arguments"]) == {"order_id": "A1001"}
    assert not [r for r in upstream.mcp_requests if r.method == "tools/call"]  # nothing ran yet
    # And a person decides
    decided = alice.post(
        f"/v1/runs/{run_id}/approvals",
        json={"decisions": [{"tool_call_id": call["id"], "approve": approve, "reason": "checked"}]},
    )
    assert decided.status_code == 200, decided.text
    run = wait_for_run(alice, run_id)
    # Then the decision went back as an mcp_approval_response, and the run completed
    assert run["status"] == "completed", run
    [answer] = _sent_items(upstream, "mcp_approval_response")
    assert answer["approval_request_id"] == call["id"] and answer["approve"] is approve
    assert not _sent_items(upstream, "function_call_output")
    calls_made = [r for r in upstream.mcp_requests if r.method == "tools/call"]
    [summary] = run["tool_calls"]
    assert summary["id"] == call["id"] and summary["runs_on"] == "mcp" and summary["server_label"] == "orders"
    assert summary["approval"]["approved"] is approve and summary["approval"]["reason"] == "checked"
    if approve:
        [made] = calls_made
        assert made.tool == "cancel_order" and made.headers.get("Authorization") == f"Bearer {TOKEN}"
        assert json.loads(summary["output"]) == {"order_id": "A1001", "cancelled": True}
        assert not summary["is_error"] if "is_error" in summary else True
    else:
        assert not calls_made
        assert "denied" in summary["output"]
    # And the call is in the run's events like a function tool's, once each
    events = _events(alice, run_id)
    created = [e["data"] for e in events if e["type"] == "tool_call.created"]
    completed = [e["data"] for e in events if e["type"] == "tool_call.completed"]
    assert [(c["id"], c["runs_on"], c["approval"], c["server_label"]) for c in created] == [
        (call["id"], "mcp", True, "orders")
    ]
    assert [c["id"] for c in completed] == [call["id"]]
    # The credential went to the MCP server only: not in the run, its events or its tool calls
    assert TOKEN not in json.dumps(run) and TOKEN not in json.dumps(events)


def test_an_mcp_call_without_approval_is_a_tool_call_of_the_run(
    alice: httpx.Client, upstream: EmulatorServer, assistants: Path
) -> None:
    (assistants / "order-desk.yaml").write_text(ORDERS.replace("always", "never"))
    upstream.script(Plan.mcp_call("lookup_order", {"order_id": "A1001"}))
    run = wait_for_run(alice, start_run(alice, "order-desk", "mcp-direct", "Where is order A1001?"))
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    assert (call["name"], call["runs_on"], call["server_label"]) == ("lookup_order", "mcp", "orders")
    assert json.loads(call["output"]) == {"order_id": "A1001", "status": "shipped"}
    types = [e["type"] for e in _events(alice, run["id"])]
    assert types.count("tool_call.created") == 1 and types.count("tool_call.completed") == 1


def test_an_mcp_server_off_the_allow_list_is_refused_naming_the_key(
    alice: httpx.Client, upstream: EmulatorServer, assistants: Path, configure: Callable[..., None]
) -> None:
    # Given an assistant naming a server the environment does not allow (edited on the running stack)
    (assistants / "order-desk.yaml").write_text(ORDERS.replace("server_label: orders", "server_label: shop"))
    # When a thread is asked for: a 422 naming the file and key, and no run at all
    refused = alice.post("/v1/threads", json={"assistant": "order-desk", "purpose": "off-list"})
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["field"] == "assistant"
    assert "assistants/order-desk.yaml: mcp[0].server_label:" in body["message"]
    assert "allow-list" in body["message"]
    # And hosted tools on an engine without them are refused the same way
    configure(THREADRUNNER_ENGINE="chat")
    chat = alice.post("/v1/threads", json={"assistant": "web-searcher", "purpose": "on-chat"})
    assert chat.status_code == 422 and "web_search" in chat.json()["message"], chat.text
