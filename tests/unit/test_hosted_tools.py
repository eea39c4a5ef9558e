"""Hosted tools (threadrunner/hosted_tools.py): checked against the environment with file, line and key;
the Responses engine offers them in the request (headers from the secret, in the request only) and reads
approval requests, MCP calls and url_citations from the response in the real SDK shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
from threadrunner.assistant_definitions import check_hosted_tools
from threadrunner.assistant_validation import check_paths, read_definition
from threadrunner.engines.base import HostedTools, RunRequest, ToolOutput
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.errors import InvalidRequestError
from threadrunner.hosted_tools import AllowedMcpServer, HostedToolPolicy, McpServer

ORDERS = AllowedMcpServer(
    server_label="orders", server_url="https://mcp.example.com/mcp", secret_name="s/orders"
)
POLICY = HostedToolPolicy(engine="responses", mcp_servers=(ORDERS,))
DESK = """\
name: desk
instructions: Help.
web_search: true
mcp:
  - server_label: orders
    server_url: https://mcp.example.com/mcp
    allowed_tools: [lookup_order]
  - server_label: shop
    server_url: https://shop.example.com/mcp
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "desk.yaml"
    path.write_text(text)
    return path


def test_an_mcp_server_off_the_allow_list_is_named_by_line_and_key(tmp_path: Path) -> None:
    _, problems = check_paths([_write(tmp_path, DESK)], POLICY)
    assert [(p.line, p.key) for p in problems] == [(8, "mcp[1].server_label")]
    assert (
        "'shop' is not on this environment's allow-list (cdk.json mcp_servers: orders)" in problems[0].message
    )


def test_a_different_url_under_an_allowed_label_is_refused(tmp_path: Path) -> None:
    text = DESK.replace("https://mcp.example.com/mcp", "https://evil.example.com/mcp").split(
        "  - server_label: shop"
    )[0]
    _, problems = check_paths([_write(tmp_path, text)], POLICY)
    assert [(p.line, p.key) for p in problems] == [(6, "mcp[0].server_url")]


def test_hosted_tools_on_an_engine_without_them_are_refused(tmp_path: Path) -> None:
    text = DESK.split("  - server_label: shop")[0]
    _, problems = check_paths(
        [_write(tmp_path, text)], HostedToolPolicy(engine="chat", mcp_servers=(ORDERS,))
    )
    assert [(p.line, p.key) for p in problems] == [(3, "web_search"), (4, "mcp")]
    assert "the environment's engine, chat" in problems[0].message


def test_without_an_environment_only_the_shape_is_checked(tmp_path: Path) -> None:
    config = read_definition(_write(tmp_path, DESK))
    assert config.web_search and [s.server_label for s in config.mcp] == ["orders", "shop"]
    assert config.mcp[0].require_approval == "always"  # the safe default


@pytest.mark.parametrize("url", ["http://mcp.example.com/mcp", "https://u:p@mcp.example.com/mcp"])
def test_an_mcp_url_must_be_https_without_credentials(tmp_path: Path, url: str) -> None:
    _, problems = check_paths([_write(tmp_path, DESK.replace("https://shop.example.com/mcp", url))])
    assert [(p.line, p.key) for p in problems] == [(9, "mcp[1].server_url")]


def test_the_api_refuses_with_a_422_naming_file_and_key(tmp_path: Path) -> None:
    config = read_definition(_write(tmp_path, DESK))
    with pytest.raises(InvalidRequestError) as refused:
        check_hosted_tools(config, engine="responses", allowed=[ORDERS])
    assert refused.value.field == "assistant"
    assert str(refused.value).startswith("assistants/desk.yaml: mcp[1].server_label: MCP server 'shop'")


def _response(output: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": "gpt-4.1-mini",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
    }


class _Upstream:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.created: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.created.append(json.loads(request.content))
        return httpx.Response(200, json=self.response)


def _engine(upstream: _Upstream, headers: dict[str, str]) -> ResponsesEngine:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://upstream.test/v1",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=httpx.MockTransport(upstream)),
    )
    return ResponsesEngine(client, mcp_headers=lambda secret: {"secret": secret, **headers})


def _request() -> RunRequest:
    server = McpServer(
        server_label="orders", server_url="https://mcp.example.com/mcp", require_approval="always"
    )
    return RunRequest(
        upstream_thread_id="conv_1",
        model="m",
        instructions="i",
        tools=[],
        hosted=HostedTools(web_search=True, mcp=[server], mcp_secrets={"orders": "s/orders"}),
    )


def test_the_request_offers_web_search_and_the_mcp_server_with_headers_from_its_secret() -> None:
    upstream = _Upstream(_response([]))
    _engine(upstream, {"Authorization": "Bearer t"}).start(_request(), "hi")
    [body] = upstream.created
    assert body["tools"] == [
        {"type": "web_search"},
        {
            "type": "mcp",
            "server_label": "orders",
            "server_url": "https://mcp.example.com/mcp",
            "require_approval": "always",
            "headers": {"secret": "s/orders", "Authorization": "Bearer t"},
        },
    ]


def test_a_decision_goes_back_as_an_mcp_approval_response() -> None:
    upstream = _Upstream(_response([]))
    engine = _engine(upstream, {})
    run = type("Run", (), {})()
    outputs = [
        ToolOutput(call_id="call_1", output="42"),
        ToolOutput(call_id="mcpr_1", output="", approve=False, reason="no"),
    ]
    engine.submit_tool_outputs(_request(), run, outputs)  # type: ignore[arg-type]
    assert upstream.created[0]["input"] == [
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": False, "reason": "no"},
    ]


def test_poll_reads_approval_requests_mcp_calls_and_url_citations() -> None:
    output = [
        {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "orders", "tools": []},
        {
            "type": "mcp_call",
            "id": "mcp_1",
            "server_label": "orders",
            "name": "lookup_order",
            "arguments": '{"order_id": "A1"}',
            "output": '{"status": "shipped"}',
            "error": None,
            "status": "completed",
            "approval_request_id": "mcpr_0",
        },
        {
            "type": "mcp_approval_request",
            "id": "mcpr_1",
            "server_label": "orders",
            "name": "cancel_order",
            "arguments": '{"order_id": "A1"}',
        },
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": "See Python docs.",
                    "annotations": [
                        {
                            "type": "url_citation",
                            "url": "https://docs.python.org/3/",
                            "title": "Python docs",
                            "start_index": 4,
                            "end_index": 15,
                        },
                        {
                            "type": "url_citation",
                            "url": "https://docs.python.org/3/",
                            "title": "Python docs",
                            "start_index": 4,
                            "end_index": 15,
                        },
                    ],
                }
            ],
        },
    ]
    run = type("Run", (), {"current_response_id": "resp_1", "id": "run_1"})()
    polled = _engine(_Upstream(_response(output)), {}).poll(run)  # type: ignore[arg-type]
    [call] = polled.tool_calls
    assert (call.call_id, call.kind, call.name, call.server_label) == (
        "mcpr_1",
        "mcp_approval",
        "cancel_order",
        "orders",
    )
    [made] = polled.hosted_calls
    assert (made.call_id, made.output, made.approval_request_id) == (
        "mcp_1",
        '{"status": "shipped"}',
        "mcpr_0",
    )
    assert [c.model_dump(exclude_none=True) for c in polled.citations] == [
        {"type": "url", "url": "https://docs.python.org/3/", "title": "Python docs"}
    ]
