"""Hosted tools of the emulator's Responses API through the real openai SDK: file_search with file
citations, web_search with URL citations, and MCP rounds with and without approval (every exchange checked
against the OpenAI contract by the ``emulator`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseOutputMessage, ResponseOutputText

from local.emulator import EmulatorServer, Plan
from local.emulator.hosted_tools import McpToolSpec, WebResult

MCP_URL = "https://mcp.example.com/mcp"
SECRET = "sk-mcp-secret-123"
REFUNDS = b"Refund policy\n\nCustomers may return any item within 30 days for a full refund to their card."
SHIPPING = b"Shipping\n\nOrders ship within two business days. International shipping takes ten days."


def store_with_docs(client: OpenAI) -> tuple[str, str, str]:
    refunds = client.files.create(file=("refunds.md", REFUNDS), purpose="assistants").id
    shipping = client.files.create(file=("shipping.md", SHIPPING), purpose="assistants").id
    store = client.vector_stores.create(name="Docs", file_ids=[shipping, refunds])
    return store.id, refunds, shipping


def mcp_tool(**overrides: Any) -> Any:
    """An ``mcp`` tool param (Any: the SDK's tool union is too wide for mypy to pick its member)."""
    return {
        "type": "mcp",
        "server_label": "orders",
        "server_url": MCP_URL,
        "headers": {"X-Api-Key": SECRET},
        **overrides,
    }


def web_tool(kind: str) -> Any:
    return {"type": kind}


def message_of(response: Response) -> ResponseOutputMessage:
    message = response.output[-1]
    assert isinstance(message, ResponseOutputMessage)
    return message


def text_part(response: Response) -> ResponseOutputText:
    part = message_of(response).content[0]
    assert isinstance(part, ResponseOutputText)
    return part


def test_file_search_cites_the_file_whose_chunk_answers(openai_client: OpenAI) -> None:
    store_id, refunds, _ = store_with_docs(openai_client)

    response = openai_client.responses.create(
        model="gpt-4.1-mini",
        input="How many days do I have for a refund?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        include=["file_search_call.results"],
    )

    call, _ = response.output
    assert call.type == "file_search_call"
    assert (call.status, call.queries) == ("completed", ["How many days do I have for a refund?"])
    assert call.results is not None and call.results[0].file_id == refunds
    part = message_of(response).content[0]
    assert part.type == "output_text"
    assert "within 30 days for a full refund" in part.text  # the best chunk, quoted
    first = part.annotations[0]
    assert first.type == "file_citation"
    assert (first.file_id, first.filename) == (refunds, "refunds.md")
    assert 0 < first.index <= len(part.text)
    tools = response.tools
    assert tools[0].type == "file_search" and tools[0].vector_store_ids == [store_id]


def test_file_search_results_are_left_out_unless_included_and_a_scripted_text_is_kept(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    store_id, _, shipping = store_with_docs(openai_client)
    emulator.script(Plan.message("Orders ship within two business days (see shipping.md)."))

    response = openai_client.responses.create(
        model="m",
        input="When do international orders ship?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 1}],
    )

    call = response.output[0]
    assert call.type == "file_search_call" and call.results is None
    part = message_of(response).content[0]
    assert part.type == "output_text"
    assert part.text == "Orders ship within two business days (see shipping.md)."
    [citation] = part.annotations
    assert citation.type == "file_citation" and citation.file_id == shipping
    assert citation.index == len(part.text)


def test_file_search_refuses_an_expired_store(openai_client: OpenAI, emulator: EmulatorServer) -> None:
    store = openai_client.vector_stores.create(
        name="Old", expires_after={"anchor": "last_active_at", "days": 1}
    )
    emulator.advance_vector_store_clock(days=2)

    with pytest.raises(openai.BadRequestError, match="expired"):
        openai_client.responses.create(
            model="m", input="anything", tools=[{"type": "file_search", "vector_store_ids": [store.id]}]
        )


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview"])
def test_web_search_cites_the_fixed_results(
    openai_client: OpenAI, emulator: EmulatorServer, kind: str
) -> None:
    emulator.set_web_results(
        [WebResult("https://example.com/python-3-13", "What's new in Python 3.13", "Free-threaded builds.")]
    )

    response = openai_client.responses.create(
        model="m",
        input="What is new in Python 3.13?",
        tools=[web_tool(kind)],
        include=["web_search_call.action.sources"],
    )

    call = response.output[0]
    assert call.type == "web_search_call" and call.status == "completed"
    assert call.action.type == "search" and call.action.query == "What is new in Python 3.13?"
    assert call.action.sources is not None and call.action.sources[0].url == "https://example.com/python-3-13"
    part = message_of(response).content[0]
    assert part.type == "output_text"
    [citation] = part.annotations
    assert citation.type == "url_citation"
    assert (citation.url, citation.title) == ("https://example.com/python-3-13", "What's new in Python 3.13")
    assert part.text[citation.start_index : citation.end_index] == "What's new in Python 3.13"


def test_mcp_lists_tools_and_calls_one_without_approval_sending_the_credentials(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    response = openai_client.responses.create(
        model="m",
        input="Look up order A1001 please",
        tools=[mcp_tool(require_approval="never", authorization="oauth-token")],
    )

    listed, call, _ = response.output
    assert listed.type == "mcp_list_tools" and listed.server_label == "orders"
    assert [tool.name for tool in listed.tools] == ["lookup_order", "cancel_order"]
    assert call.type == "mcp_call"
    assert (call.server_label, call.name, json.loads(call.arguments)) == (
        "orders",
        "lookup_order",
        {"order_id": "A1001"},
    )
    assert call.output is not None and json.loads(call.output)["status"] == "shipped"
    assert call.approval_request_id is None
    assert "lookup_order returned" in text_part(response).text
    # The credentials reached the fake server, on both requests, and never came back
    requests = emulator.mcp_requests
    assert [(r.method, r.tool) for r in requests] == [("tools/list", None), ("tools/call", "lookup_order")]
    assert all(r.headers == {"X-Api-Key": SECRET, "Authorization": "Bearer oauth-token"} for r in requests)
    wire = b"".join(exchange.response_body for exchange in emulator.exchanges)
    assert SECRET.encode() not in wire and b"oauth-token" not in wire


def test_an_approval_request_ends_the_response_and_approval_makes_the_call(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    tools: Any = [mcp_tool()]  # require_approval defaults to "always"
    asked = openai_client.responses.create(model="m", input="Cancel order A1001", tools=tools)

    listed, request = asked.output
    assert listed.type == "mcp_list_tools"
    assert request.type == "mcp_approval_request"
    assert (request.server_label, request.name, json.loads(request.arguments)) == (
        "orders",
        "cancel_order",
        {"order_id": "A1001"},
    )
    assert [r.method for r in emulator.mcp_requests] == ["tools/list"]  # nothing called yet

    approved = openai_client.responses.create(
        model="m",
        previous_response_id=asked.id,
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
        tools=tools,
    )

    call, _ = approved.output  # the tools were listed earlier in the chain: not again
    assert call.type == "mcp_call" and call.approval_request_id == request.id
    assert call.name == "cancel_order" and call.output is not None and json.loads(call.output)["cancelled"]
    assert "cancel_order returned" in text_part(approved).text
    assert [r.method for r in emulator.mcp_requests] == ["tools/list", "tools/call"]


def test_a_denied_approval_is_answered_without_the_call_in_a_conversation(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    tools: Any = [mcp_tool(require_approval={"never": {"tool_names": ["lookup_order"]}})]
    conversation = openai_client.conversations.create()
    asked = openai_client.responses.create(
        model="m", conversation=conversation.id, input="Cancel order A1001", tools=tools
    )
    request = asked.output[-1]
    assert request.type == "mcp_approval_request"

    denied = openai_client.responses.create(
        model="m",
        conversation=conversation.id,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": False,
                "reason": "not today",
            }
        ],
        tools=tools,
    )

    assert len(denied.output) == 1
    assert "cancel_order was not approved (not today)" in text_part(denied).text
    assert [r.method for r in emulator.mcp_requests] == ["tools/list"]
    kinds = [item.type for item in openai_client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == ["message", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "message"]


def test_an_approval_response_to_no_request_is_refused(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="No approval request"):
        openai_client.responses.create(
            model="m",
            input=[{"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}],
            tools=[mcp_tool()],
        )


def test_a_tool_the_request_does_not_allow_is_neither_listed_nor_called(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    tools: Any = [mcp_tool(allowed_tools=["lookup_order"], require_approval="never")]

    unscripted = openai_client.responses.create(model="m", input="Cancel A1001", tools=tools)
    emulator.script(Plan.mcp_call("cancel_order", {"order_id": "A1001"}))
    scripted = openai_client.responses.create(
        model="m", previous_response_id=unscripted.id, input="Cancel order A1001 now", tools=tools
    )

    listed = unscripted.output[0]
    assert listed.type == "mcp_list_tools" and [tool.name for tool in listed.tools] == ["lookup_order"]
    assert [item.type for item in unscripted.output] == ["mcp_list_tools", "message"]
    assert [item.type for item in scripted.output] == ["message"]
    assert "cancel_order is not available" in text_part(scripted).text
    assert [r.method for r in emulator.mcp_requests] == ["tools/list"]


def test_a_configured_mcp_server_serves_its_tools_and_an_unknown_one_fails(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    emulator.add_mcp_server(
        "https://dice.example.com/mcp",
        [McpToolSpec("roll_dice", "Roll some dice.", {"type": "object", "properties": {}}, "4")],
    )
    emulator.script(Plan.mcp_call("roll_dice", text="You rolled a 4."))

    response = openai_client.responses.create(
        model="m",
        input="Roll the dice",
        tools=[
            mcp_tool(server_label="dice", server_url="https://dice.example.com/mcp", require_approval="never")
        ],
    )

    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert response.output_text == "You rolled a 4."
    with pytest.raises(openai.APIStatusError) as failed:
        openai_client.responses.create(
            model="m",
            input="hi",
            tools=[mcp_tool(server_url="https://unknown.example.com/mcp")],
        )
    assert failed.value.status_code == 424


def test_hosted_tool_output_streams_in_the_contract_shapes(openai_client: OpenAI) -> None:
    store_id, refunds, _ = store_with_docs(openai_client)

    with openai_client.responses.stream(
        model="m",
        input="refund days",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}, mcp_tool(require_approval="never")],
    ) as stream:
        final = stream.get_final_response()

    assert [item.type for item in final.output] == ["mcp_list_tools", "file_search_call", "message"]
    first = text_part(final).annotations[0]
    assert first.type == "file_citation" and first.file_id == refunds
