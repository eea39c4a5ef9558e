"""Conversation items as the API returns them: ids, statuses and content parts filled in."""

from __future__ import annotations

import json
import secrets
from typing import Any

from local.emulator.bodies import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputItem,
    McpApprovalResponseItem,
    MessageItem,
)


def new_id(prefix: str, separator: str = "_") -> str:
    """Ids shaped like the real ones (``resp_<48 hex>``, ``file-<hex>``); random, since nothing sorts them."""
    return f"{prefix}{separator}{secrets.token_hex(24)}"


def stored_item(item: InputItem) -> dict[str, Any]:
    """An input item as the conversation keeps it."""
    if isinstance(item, MessageItem):
        part = "output_text" if item.role == "assistant" else "input_text"
        content = [_text_part(part, item.content)] if isinstance(item.content, str) else item.content
        return {
            "type": "message",
            "id": new_id("msg"),
            "status": "completed",
            "role": item.role,
            "content": content,
        }
    if isinstance(item, FunctionCallItem):
        return {
            "type": "function_call",
            "id": item.id or new_id("fc"),
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "status": "completed",
        }
    if isinstance(item, McpApprovalResponseItem):
        return {
            "type": "mcp_approval_response",
            "id": item.id or new_id("mcpa"),
            "approval_request_id": item.approval_request_id,
            "approve": item.approve,
            "reason": item.reason,
        }
    assert isinstance(item, FunctionCallOutputItem)
    return {
        "type": "function_call_output",
        "id": new_id("fco"),
        "call_id": item.call_id,
        "output": item.output,
        "status": "completed",
    }


def assistant_message(text: str, *, status: str = "completed", item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": [_text_part("output_text", text)],
    }


def function_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": new_id("fc"),
        "call_id": f"call_{secrets.token_hex(12)}",
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def unanswered_calls(items: list[dict[str, Any]]) -> list[str]:
    """Call ids of function calls that have no output yet (the model cannot go on without them)."""
    answered = {item["call_id"] for item in items if item.get("type") == "function_call_output"}
    return [
        item["call_id"]
        for item in items
        if item.get("type") == "function_call" and item["call_id"] not in answered
    ]


def _text_part(kind: str, text: str) -> dict[str, Any]:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "input_text", "text": text}
