"""Responses: created from a plan (scripted or the demo policy), revealed as the client polls.

A background response is ``queued`` when created, ``in_progress`` for its plan's number of retrieves, then
final; in time-based mode (``model_seconds``) it is final ``model_seconds`` after its creation instead, however
often it is polled. Its output is decided at creation (that is when the model "sees" the conversation) and joins the
conversation when the response completes. While a response of a conversation is not final, the
conversation is locked, as on the real service.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from threadrunner.clock import epoch, now

from local.emulator import policy
from local.emulator.analysis import CHART_NAME, SUMMARY_NAME, analyse_csv
from local.emulator.bodies import (
    AutoContainer,
    CodeInterpreterTool,
    CreateResponseBody,
    FunctionTool,
    parse,
    parse_item,
)
from local.emulator.containers import Container, ContainerStore
from local.emulator.conversations import ConversationStore
from local.emulator.errors import ApiError, invalid_request, not_found
from local.emulator.files import FileStore
from local.emulator.hosted_tools import HostedTools, tool_resource
from local.emulator.items import assistant_message, function_call, new_id, stored_item, unanswered_calls
from local.emulator.script import (
    AnalyseCsvPlan,
    FailPlan,
    HostedToolsPlan,
    IncompletePlan,
    MessagePlan,
    NeverFinishesPlan,
    Plan,
    Script,
    StaysQueuedPlan,
    ToolCallsPlan,
)

RUNNING = ("queued", "in_progress")
_LOCKED = "Another process is currently operating on this conversation. Please retry in a few seconds."


@dataclass
class StoredResponse:
    id: str
    created_at: int
    request: CreateResponseBody
    plan: Plan
    polls_left: int
    seen: list[dict[str, Any]]  # every item the model saw, oldest first (for previous_response_id chains)
    status: str = "queued"
    output: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None
    incomplete_details: dict[str, str] | None = None
    completed_at: int | None = None
    usage: dict[str, Any] | None = None
    history_items: int = 0  # how many of ``seen`` came from earlier turns (a prompt-cache hit, in _usage)
    container: Container | None = None  # the code interpreter's, when the request has the tool
    ready_at: float | None = None  # time-based mode: when the model is done (wall clock, time.time())
    finished_at: float | None = None  # when it became final (wall clock): what a completion delay counts from
    # Streaming (local/emulator/streams.py): the events so far (a stream resumes after any of them), the
    # planned answer's pieces and how many of them the model has "written", and its message's id.
    events: list[dict[str, Any]] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    released: int = 0
    message_id: str = field(default_factory=lambda: new_id("msg"))

    @property
    def final(self) -> bool:
        return self.status not in RUNNING

    @property
    def conversation_id(self) -> str | None:
        return self.request.conversation


class ResponseStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(
        self,
        conversations: ConversationStore,
        script: Script,
        *,
        polls: int,
        today: Callable[[], date],
        files: FileStore | None = None,
        containers: ContainerStore | None = None,
        model_seconds: float | None = None,
        hosted: HostedTools | None = None,
    ) -> None:
        self._model_seconds = model_seconds
        self._hosted = hosted
        self._files = files or FileStore()
        self._containers = containers or ContainerStore()
        self._conversations = conversations
        self._script = script
        self._polls = polls
        self._today = today
        self._responses: dict[str, StoredResponse] = {}

    def create(self, data: Any) -> StoredResponse:
        request = parse(CreateResponseBody, data)
        history = self._history(request)
        new_items = [
            stored_item(parse_item(raw, f"input[{index}]")) for index, raw in enumerate(request.input)
        ]
        seen = history + new_items
        if missing := unanswered_calls(seen):
            raise invalid_request(f"No tool output found for function call {missing[0]}.", param="input")
        if request.hosted_tools:
            self._hosted_tools().check(request, seen, len(new_items))
        container = self._container(request)
        scripted = self._script.next_turn()
        plan = scripted or policy.plan_turn(
            seen,
            instructions=request.instructions,
            tools=[
                policy.FunctionTool(tool.name, tool.description or "", tool.parameters)
                for tool in request.function_tools
            ],
            today=self._today(),
            csv_file=_given_csv(request, container),
        )
        if request.hosted_tools:
            plan = _with_hosted_tools(plan, scripted=scripted is not None, seen=seen)
        response = StoredResponse(
            id=new_id("resp"),
            created_at=epoch(now()),
            request=request,
            plan=plan,
            polls_left=self._polls if plan.polls is None else plan.polls,
            seen=seen,
            history_items=len(history),
            container=container,
        )
        if self._model_seconds is not None:
            response.ready_at = time.time() + self._model_seconds
        if request.conversation is not None:
            self._conversations.get(request.conversation).items.extend(new_items)
        self._responses[response.id] = response
        if not request.background:
            self._finish(response)
        return response

    def streamed(self, response_id: str) -> StoredResponse:
        """A response to stream again (``GET /v1/responses/{id}?stream=true``): only one created streaming."""
        response = self._get(response_id)
        if not response.request.stream:
            raise invalid_request(
                "This response was not created with stream=true, so it cannot be streamed.", param="stream"
            )
        return response

    def retrieve(self, response_id: str) -> StoredResponse:
        response = self._get(response_id)
        if response.final or isinstance(response.plan, StaysQueuedPlan):
            return response
        if response.ready_at is not None and not isinstance(response.plan, NeverFinishesPlan):
            if time.time() < response.ready_at:
                response.status = "in_progress"
            else:
                self._finish(response)
                response.finished_at = response.ready_at
            return response
        if response.polls_left > 0 or isinstance(response.plan, NeverFinishesPlan):
            response.polls_left = max(response.polls_left - 1, 0)
            response.status = "in_progress"
        else:
            self._finish(response)
        return response

    def cancel(self, response_id: str) -> StoredResponse:
        response = self._get(response_id)
        if not response.request.background:
            raise invalid_request("Only responses created with background=true can be cancelled.")
        if not response.final:  # cancelling a finished response changes nothing and is not an error
            response.status = "cancelled"
        return response

    def delete(self, response_id: str) -> dict[str, Any]:
        self._get(response_id)
        del self._responses[response_id]
        return {"id": response_id, "object": "response", "deleted": True}

    def clear(self) -> None:
        self._responses.clear()

    def completion_times(self) -> dict[str, float]:
        """Response id -> when the model finished it (wall clock), for the responses that are final."""
        return {rid: r.finished_at for rid, r in self._responses.items() if r.finished_at is not None}

    def open_ids(self) -> list[str]:
        """Background responses still running (queued or in progress): work the client left open."""
        return [response.id for response in self._responses.values() if not response.final]

    def _get(self, response_id: str) -> StoredResponse:
        response = self._responses.get(response_id)
        if response is None:
            raise not_found(f"Response with id '{response_id}' not found.")
        return response

    def _container(self, request: CreateResponseBody) -> Container | None:
        """The code interpreter's container: a new one holding copies of the listed files, or an existing
        one by id."""
        tool = request.code_interpreter
        if tool is None:
            return None
        where = f"tools[{request.tools.index(tool)}].container"
        if isinstance(tool.container, str):
            return self._containers.get(tool.container, param=where)
        container = self._containers.create()
        for index, file_id in enumerate(tool.container.file_ids):
            if not self._files.exists(file_id):
                raise invalid_request(f"File {file_id} not found.", param=f"{where}.file_ids[{index}]")
            stored = self._files.get(file_id)
            container.add(stored.filename, stored.data)
        return container

    def _hosted_tools(self) -> HostedTools:
        if self._hosted is None:
            raise invalid_request("This emulator was built without hosted tools.", param="tools")
        return self._hosted

    def _history(self, request: CreateResponseBody) -> list[dict[str, Any]]:
        """What the model sees before this request's input: the conversation, or the previous response."""
        if request.conversation is not None and request.previous_response_id is not None:
            raise invalid_request(
                "Mutually exclusive parameters: 'conversation' and 'previous_response_id'.",
                param="conversation",
            )
        if request.conversation is not None:
            conversation = self._conversations.get(request.conversation, param="conversation")
            if any(r.conversation_id == conversation.id and not r.final for r in self._responses.values()):
                raise ApiError(400, _LOCKED, param="conversation", code="conversation_locked")
            return list(conversation.items)
        if request.previous_response_id is not None:
            previous = self._responses.get(request.previous_response_id)
            if previous is None:
                raise not_found(
                    f"Previous response with id '{request.previous_response_id}' not found.",
                    param="previous_response_id",
                )
            return previous.seen + previous.output
        return []

    def _finish(self, response: StoredResponse) -> None:
        """Reveal the planned outcome."""
        plan = response.plan
        if isinstance(plan, StaysQueuedPlan):
            return
        if isinstance(plan, NeverFinishesPlan):
            response.status = "in_progress"
            return
        if isinstance(plan, FailPlan):
            response.status = "failed"
            response.error = {"code": plan.code, "message": plan.error_message}
            return
        if isinstance(plan, ToolCallsPlan):
            response.output = [function_call(name, arguments) for name, arguments in plan.calls]
            response.status = "completed"
        elif isinstance(plan, HostedToolsPlan):
            response.output = self._hosted_tools().output(
                response.request,
                response.seen,
                len(response.seen) - response.history_items,
                plan,
                today=self._today(),
            )
            response.status = "completed"
        elif isinstance(plan, MessagePlan):
            response.output = [assistant_message(plan.text, item_id=response.message_id)]
            response.status = "completed"
        elif isinstance(plan, AnalyseCsvPlan):
            response.output = _analysis_output(response.container, plan.text)
            response.status = "completed"
        elif isinstance(plan, IncompletePlan):
            response.output = (
                [assistant_message(plan.text, status="incomplete", item_id=response.message_id)]
                if plan.text
                else []
            )
            response.status = "incomplete"
            response.incomplete_details = {"reason": plan.reason}
        else:
            raise TypeError(f"unknown plan {plan!r}")
        response.completed_at = epoch(now()) if response.status == "completed" else None
        response.finished_at = time.time()
        response.usage = _usage(response)
        if response.conversation_id is not None:
            with suppress(ApiError):  # the conversation may have been deleted while the model ran
                self._conversations.get(response.conversation_id).items.extend(response.output)


def _given_csv(request: CreateResponseBody, container: Container | None) -> str | None:
    """The name of the first CSV this request gives the code interpreter (its new container's files); an
    existing container by id gives nothing new (it may hold an earlier analysis's summary.csv)."""
    tool = request.code_interpreter
    if container is None or tool is None or not isinstance(tool.container, AutoContainer):
        return None
    return next((f.filename for f in container.files.values() if f.filename.lower().endswith(".csv")), None)


def _analysis_output(container: Container | None, text: str) -> list[dict[str, Any]]:
    """A code interpreter call that analyses the container's first CSV, and an answer citing its files."""
    if container is None:
        return [assistant_message("I need the code interpreter tool to analyse files.")]
    source = next((f for f in container.files.values() if f.filename.lower().endswith(".csv")), None)
    if source is None:
        return [assistant_message("There is no CSV file to analyse.")]
    analysis = analyse_csv(source.data)
    chart = container.add(CHART_NAME, analysis.chart)
    summary = container.add(SUMMARY_NAME, analysis.summary)
    call = {
        "type": "code_interpreter_call",
        "id": new_id("ci"),
        "status": "completed",
        "container_id": container.id,
        "code": f"import pandas as pd\ndf = pd.read_csv('/mnt/data/{source.filename}')\n...",
        "outputs": [{"type": "logs", "logs": analysis.logs}],
    }
    message = assistant_message(f"{text} Chart: {CHART_NAME}. Summary: {SUMMARY_NAME}.")
    part = message["content"][0]
    for cited in (chart, summary):
        start = part["text"].index(cited.filename)
        part["annotations"].append(
            {
                "type": "container_file_citation",
                "container_id": container.id,
                "file_id": cited.id,
                "filename": cited.filename,
                "start_index": start,
                "end_index": start + len(cited.filename),
            }
        )
    return [call, message]


def _with_hosted_tools(plan: Plan, *, scripted: bool, seen: list[dict[str, Any]]) -> Plan:
    """A turn that answers, on a request with hosted tools, runs them first: a scripted message keeps its
    text; the policy's answer (unless it answers function outputs) is written from what they found."""
    if not isinstance(plan, MessagePlan):
        return plan
    if scripted or policy.turn_from_items(seen).calls:
        return HostedToolsPlan(text=plan.text, polls=plan.polls, expires_in=plan.expires_in)
    return HostedToolsPlan(choose_mcp_tool=True, polls=plan.polls, expires_in=plan.expires_in)


def _tool_resource(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, FunctionTool | CodeInterpreterTool):
        return tool_resource(tool)
    if isinstance(tool, CodeInterpreterTool):
        container = tool.container
        return {
            "type": "code_interpreter",
            "container": container.model_dump() if isinstance(container, AutoContainer) else container,
        }
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": True if tool.strict is None else tool.strict,
    }


def _usage(response: StoredResponse) -> dict[str, Any]:
    """Deterministic token counts: a token is about four characters."""
    prompt = (
        (response.request.instructions or "")
        + json.dumps(response.seen)
        + json.dumps([tool.model_dump() for tool in response.request.tools])
    )
    input_tokens = math.ceil(len(prompt) / 4)
    output_tokens = math.ceil(len(json.dumps(response.output)) / 4)
    # A later turn finds its prefix (instructions, tools and the earlier items) in the prompt cache.
    cached_tokens = 0
    if response.history_items:
        prefix = (
            (response.request.instructions or "")
            + json.dumps(response.seen[: response.history_items])
            + json.dumps([tool.model_dump() for tool in response.request.tools])
        )
        cached_tokens = min(math.ceil(len(prefix) / 4), input_tokens)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def resource(response: StoredResponse) -> dict[str, Any]:
    """The Response object on the wire."""
    request = response.request
    body: dict[str, Any] = {
        "id": response.id,
        "object": "response",
        "created_at": response.created_at,
        "status": response.status,
        "background": request.background,
        "completed_at": response.completed_at,
        "conversation": {"id": request.conversation} if request.conversation else None,
        "error": response.error,
        "incomplete_details": response.incomplete_details,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {},
        "model": request.model,
        "output": response.output,
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "reasoning": None,
        "service_tier": "default",
        "store": request.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": request.tool_choice,
        "tools": [_tool_resource(tool) for tool in request.tools],
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": "disabled",
    }
    if response.usage is not None:  # the spec has no null usage: absent until the model has run
        body["usage"] = response.usage
    return body
