"""Chat Completions (``POST /v1/chat/completions``): one model turn per call, answered in the call (or, with
``stream: true``, streamed as chunks: local/emulator/streams.py), from a plan (scripted or the demo policy)
like the other APIs.

The model reads the messages as it would a Responses conversation (policy.Turn: the latest user message,
the tool calls and tool outputs after it). How a plan plays here: tool calls end with ``finish_reason:
tool_calls``, a message with ``stop``, an incomplete turn with ``length`` (or ``content_filter``); a failed
turn is an HTTP error (500 for ``server_error``, else 400 with the plan's code), since a completion has no
failed state; a slow turn answers after its polls times the poll interval, and one that never finishes holds
the call until the client gives up (or the emulator is reset).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import Field
from threadrunner.clock import epoch, now

from local.emulator import policy
from local.emulator.bodies import _Body, parse
from local.emulator.errors import ApiError, invalid_request
from local.emulator.items import new_id
from local.emulator.script import (
    FailPlan,
    IncompletePlan,
    MessagePlan,
    NeverFinishesPlan,
    Plan,
    Script,
    ToolCallsPlan,
)

NEVER_SECONDS = 120.0  # how long a never-finishing completion holds its call at most
_FINISH_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


class FunctionObject(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(_Body):
    type: Literal["function"]
    function: FunctionObject


class CreateChatCompletionBody(_Body):
    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[ChatTool] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    n: int | None = None
    max_completion_tokens: int | None = None
    max_tokens: int | None = None


# Messages, validated one by one so an error names its place, e.g. ``messages[2].tool_call_id``.
class _TextMessage(_Body):
    role: Literal["system", "developer", "user"]
    content: str | list[dict[str, Any]]


class _ToolCall(_Body):
    id: str
    type: Literal["function"]
    function: dict[str, str]


class _AssistantMessage(_Body):
    role: Literal["assistant"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[_ToolCall] | None = None


class _ToolMessage(_Body):
    role: Literal["tool"]
    tool_call_id: str
    content: str | list[dict[str, Any]]


_MESSAGE_MODELS: dict[str, type[_Body]] = {
    "system": _TextMessage,
    "developer": _TextMessage,
    "user": _TextMessage,
    "assistant": _AssistantMessage,
    "tool": _ToolMessage,
}


@dataclass(frozen=True)
class Completion:
    body: dict[str, Any]
    delay_seconds: float  # how long the model "takes": the server answers after this (streamed: over this)
    stream: bool = False
    include_usage: bool = False  # streamed: a last chunk carries the usage


class ChatCompletions:
    """Stateless like the real endpoint (nothing is stored); the script is shared with the other APIs."""

    def __init__(self, script: Script, *, poll_after_ms: int, today: Callable[[], date]) -> None:
        self._script = script
        self._poll_after_ms = poll_after_ms
        self._today = today

    def create(self, data: Any) -> Completion:
        request = parse(CreateChatCompletionBody, data)
        if request.n not in (None, 1):
            raise invalid_request("The emulator answers with one choice (n=1).", param="n")
        messages = [_parse_message(raw, index) for index, raw in enumerate(request.messages)]
        _check_tool_rounds(messages)
        tools = [
            policy.FunctionTool(tool.function.name, tool.function.description or "", tool.function.parameters)
            for tool in request.tools
            if request.tool_choice != "none"
        ]
        plan = self._script.next_turn() or policy.plan_for(
            _turn(messages), instructions=_instructions(messages), tools=tools, today=self._today()
        )
        return Completion(
            body=self._body(request, plan),
            delay_seconds=self._delay(plan),
            stream=bool(request.stream),
            include_usage=bool((request.stream_options or {}).get("include_usage")),
        )

    def _delay(self, plan: Plan) -> float:
        if isinstance(plan, NeverFinishesPlan):
            return NEVER_SECONDS
        return (plan.polls or 0) * self._poll_after_ms / 1000

    def _body(self, request: CreateChatCompletionBody, plan: Plan) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if isinstance(plan, FailPlan):
            status = 500 if plan.code == "server_error" else 400
            raise ApiError(
                status,
                plan.error_message,
                type="server_error" if status == 500 else "invalid_request_error",
                code=plan.code,
            )
        if isinstance(plan, ToolCallsPlan):
            message["tool_calls"] = [_tool_call(name, arguments) for name, arguments in plan.calls]
            finish = "tool_calls"
        elif isinstance(plan, MessagePlan):
            message["content"], finish = plan.text, "stop"
        elif isinstance(plan, IncompletePlan):
            message["content"], finish = plan.text, _FINISH_INCOMPLETE[plan.reason]
        elif isinstance(plan, NeverFinishesPlan):
            message["content"], finish = "", "length"  # only seen by a client that waited that long
        else:
            raise TypeError(f"unknown plan {plan!r}")
        return {
            "id": new_id("chatcmpl", "-"),
            "object": "chat.completion",
            "created": epoch(now()),
            "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": _usage(request, message),
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }


def _parse_message(raw: Any, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    role = raw.get("role") if isinstance(raw, dict) else None
    model = _MESSAGE_MODELS.get(role) if isinstance(role, str) else None
    if model is None:
        raise invalid_request(
            f"Invalid value for '{where}.role': expected one of {sorted(_MESSAGE_MODELS)}.",
            param=f"{where}.role",
            code="invalid_value",
        )
    message = parse(model, raw, where=where)
    if isinstance(message, _AssistantMessage) and message.content is None and not message.tool_calls:
        raise invalid_request(
            f"Missing required parameter: '{where}.content'.",
            param=f"{where}.content",
            code="missing_required_parameter",
        )
    return dict(raw)


def _check_tool_rounds(messages: list[dict[str, Any]]) -> None:
    """As the real service: every tool message answers a call of the assistant message before it, and an
    assistant message with tool calls is followed by one tool message per call."""
    waiting: dict[str, int] = {}  # call id -> index of the assistant message that made it
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if waiting.pop(message["tool_call_id"], None) is None:
                raise invalid_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            continue
        if waiting:
            _unanswered(waiting)
        if role == "assistant":
            waiting = {call["id"]: index for call in message.get("tool_calls") or []}
    if waiting:
        _unanswered(waiting)


def _unanswered(waiting: dict[str, int]) -> None:
    raise invalid_request(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}",
        param=f"messages.[{min(waiting.values())}].role",
    )


def _turn(messages: list[dict[str, Any]]) -> policy.Turn:
    """The latest user message, and the calls and outputs after it."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            after = messages[index + 1 :]
            return policy.Turn(
                question=policy.text_of(messages[index]["content"]),
                calls=tuple(
                    policy.ToolCall(call["id"], call["function"]["name"])
                    for message in after
                    for call in message.get("tool_calls") or []
                ),
                outputs={m["tool_call_id"]: m["content"] for m in after if m["role"] == "tool"},
            )
    return policy.Turn(question=None)


def _instructions(messages: list[dict[str, Any]]) -> str:
    return "\n".join(policy.text_of(m["content"]) for m in messages if m["role"] in ("system", "developer"))


def _tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_{secrets.token_hex(12)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _usage(request: CreateChatCompletionBody, message: dict[str, Any]) -> dict[str, Any]:
    """Deterministic token counts: a token is about four characters."""
    prompt = json.dumps(request.messages) + json.dumps([tool.model_dump() for tool in request.tools])
    prompt_tokens = math.ceil(len(prompt) / 4)
    completion_tokens = math.ceil(len(json.dumps(message)) / 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
