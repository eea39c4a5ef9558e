"""The ``chat`` engine: Chat Completions with the assistant's tools against any OpenAI-compatible server
(OpenAI, vLLM, Ollama, LiteLLM, ...). It is also the usual fallback engine (threadrunner/fallback.py).

The upstream keeps nothing, so the thread is our own message log: each completion sends the instructions,
the thread's earlier user messages and answers (trimmed to the model's context budget from the newest end),
and this run's user message and tool rounds. It keeps no files either: a run's text files are inlined into
its user message (files/inline.py), and that content goes into the log, so later runs replay it.

Start run and Submit tool outputs make the completion call synchronously and store what came back
(stores/chat_rounds.py); Check run only reports it, so the same workflow drives this engine. Cancel is
local: there is nothing running upstream to stop. A streamed run (``streaming``) makes the call with
``stream: true`` and hands each content chunk on as it comes, then keeps the completion the chunks make up.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import httpx2 as httpx  # the HTTP client the openai SDK is built on
import openai
from openai import OpenAI
from openai.types.chat import ChatCompletion

from threadrunner import clock
from threadrunner.engines import context_window
from threadrunner.engines.base import (
    DeltaSink,
    RunRequest,
    ToolOutput,
    ToolSpec,
    UpstreamRun,
    UpstreamToolCall,
)
from threadrunner.engines.errors import upstream_errors
from threadrunner.errors import UpstreamError
from threadrunner.files.inline import inline
from threadrunner.models.records import MessageRecord, MessageRole, RunError, RunRecord, Usage
from threadrunner.stores.chat_rounds import ChatRound, ChatState
from threadrunner.stores.messages import message_id

_PAGE = 100
# finish_reason -> how the round ended: cut short by the token limit or the content filter is incomplete.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ChatEngine:
    name = "chat"

    def __init__(self, client: OpenAI, state: ChatState | None = None) -> None:
        """Without ``state`` (thread cleanup) the engine cancels and deletes, which need nothing."""
        self._client = client
        self._state = state
        self._on_delta: DeltaSink | None = None

    def streaming(self, on_delta: DeltaSink) -> ChatEngine:
        """This engine streaming its completions: each content chunk goes to ``on_delta`` as it comes."""
        streamed = copy.copy(self)
        streamed._on_delta = on_delta
        return streamed

    def create_thread(self, metadata: dict[str, str]) -> str:
        return clock.new_id("chat")  # nothing upstream: the thread is our message log

    def delete_thread(self, upstream_thread_id: str) -> None:
        return None

    def thread_exists(self, upstream_thread_id: str) -> bool:
        return True  # the thread is our own log

    def start(self, request: RunRequest, message: str) -> str:
        content = self._with_files(request, message)
        if request.files:
            self._log_user_content(request, content)
        return self._complete(request, content, 0, [])

    def submit_tool_outputs(self, request: RunRequest, run: RunRecord, outputs: list[ToolOutput]) -> str:
        return self._complete(request, self._logged_content(request, run.message), run.round + 1, outputs)

    def poll(self, run: RunRecord) -> UpstreamRun:
        stored = self._needs_state().rounds.get(run.id, run.round)
        if stored is None:
            raise UpstreamError(f"run {run.id} has no chat completion for round {run.round}")
        error = None
        if stored.status == "incomplete":
            reason = _INCOMPLETE.get(stored.finish_reason or "", stored.finish_reason)
            error = RunError(code="incomplete", message=f"incomplete: {reason}")
        return UpstreamRun(
            status=stored.status,  # type: ignore[arg-type]
            tool_calls=stored.tool_calls,
            answer=stored.content,
            usage=stored.usage,
            error=error,
        )

    def find_created(
        self, request: RunRequest, run: RunRecord, round_number: int, call_ids: Sequence[str]
    ) -> str | None:
        """The completion is kept as soon as it returns: if it is there, the round happened."""
        stored = self._needs_state().rounds.get(request.run_id, round_number)
        return None if stored is None else stored.completion_id

    def close_tool_calls(self, run: RunRecord, call_ids: Sequence[str]) -> None:
        return None  # the next run replays only answers and user messages from our log

    def cancel(self, run: RunRecord) -> None:
        return None  # each completion ended with its call; Check run ends the run cancelled

    def _complete(
        self, request: RunRequest, message: str, round_number: int, outputs: list[ToolOutput]
    ) -> str:
        state = self._needs_state()
        earlier_rounds = [r for r in state.rounds.list(request.run_id) if r.round < round_number]
        required = [
            {"role": "system", "content": request.instructions},
            {"role": "user", "content": message},
            *_replay(earlier_rounds),
            *_tool_messages(outputs),
        ]
        history = context_window.fit(
            required, self._earlier_messages(request), state.context_budget(request.model)
        )
        chat_round = self._call(request, [required[0], *history, *required[1:]], round_number)
        state.rounds.put(chat_round.model_copy(update={"tool_outputs": outputs}))
        return chat_round.completion_id

    def _call(self, request: RunRequest, messages: list[dict[str, Any]], round_number: int) -> ChatRound:
        waiting = ChatRound(
            run_id=request.run_id,
            round=round_number,
            completion_id=f"chat-pending-{round_number}",
            status="in_progress",
        )
        timeout = self._timeout(request)
        if timeout is not None and timeout <= 0:
            return waiting  # past the run's deadline already: Check run times the run out
        arguments: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.tools:
            arguments |= {"tools": [_function_tool(tool) for tool in request.tools], "tool_choice": "auto"}
        # No UpstreamOutcomeUnknown here: a completion leaves nothing upstream, so a lost call costs tokens,
        # never a second answer (only what we store counts).
        with upstream_errors():
            try:
                client = self._client if timeout is None else self._client.with_options(timeout=timeout)
                if self._on_delta is None:
                    completion = client.chat.completions.create(**arguments)
                else:
                    completion = self._streamed(client, arguments, round_number)
            except openai.APITimeoutError:
                if not _past(request):
                    raise
                return waiting  # the model was still working when the run's deadline came
        if not completion.choices:
            raise UpstreamError("the upstream answered a chat completion without choices")
        choice = completion.choices[0]
        usage = Usage()
        if completion.usage is not None:
            details = completion.usage.prompt_tokens_details
            reasoning = completion.usage.completion_tokens_details
            usage = Usage(
                prompt_tokens=completion.usage.prompt_tokens,
                cached_tokens=(details.cached_tokens or 0) if details else 0,
                completion_tokens=completion.usage.completion_tokens,
                reasoning_tokens=(reasoning.reasoning_tokens or 0) if reasoning else 0,
                total_tokens=completion.usage.total_tokens,
            )
        calls = [
            UpstreamToolCall(call_id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in choice.message.tool_calls or []
            if call.type == "function"
        ]
        return ChatRound(
            run_id=request.run_id,
            round=round_number,
            completion_id=completion.id,
            status="incomplete" if choice.finish_reason in _INCOMPLETE else "completed",
            finish_reason=choice.finish_reason,
            content=choice.message.content,
            tool_calls=calls,
            usage=usage,
        )

    def _streamed(self, client: OpenAI, arguments: dict[str, Any], round_number: int) -> ChatCompletion:
        """The completion streamed (each content chunk to ``on_delta``), put together as the SDK's own
        non-streamed answer, so the round is kept the same way."""
        assert self._on_delta is not None
        stream = client.chat.completions.create(
            **arguments, stream=True, stream_options={"include_usage": True}
        )
        completion: dict[str, Any] = {"object": "chat.completion", "choices": [], "usage": None}
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish_reason = None
        with stream:
            try:
                for chunk in stream:
                    completion |= {"id": chunk.id, "created": chunk.created, "model": chunk.model}
                    completion["usage"] = chunk.usage.model_dump() if chunk.usage else completion["usage"]
                    for choice in chunk.choices[:1]:
                        finish_reason = choice.finish_reason or finish_reason
                        if choice.delta.content:
                            self._on_delta(round_number, len(content), choice.delta.content)
                            content.append(choice.delta.content)
                        for call in choice.delta.tool_calls or []:
                            _add_call_chunk(
                                calls.setdefault(call.index, {}), call.model_dump(exclude_none=True)
                            )
            except httpx.TimeoutException as error:
                raise openai.APITimeoutError(request=stream.response.request) from error
            except httpx.TransportError as error:
                raise openai.APIConnectionError(request=stream.response.request) from error
        message = {
            "role": "assistant",
            "content": "".join(content) if content or not calls else None,
            "tool_calls": [calls[index] for index in sorted(calls)] or None,
        }
        completion["choices"] = [{"index": 0, "message": message, "finish_reason": finish_reason or "stop"}]
        return ChatCompletion.model_validate(completion)

    def _timeout(self, request: RunRequest) -> float | None:
        """Never wait for the model past the run's deadline (the client's own timeout applies too)."""
        if request.deadline_at is None:
            return None
        left = (request.deadline_at - clock.now()).total_seconds()
        client_timeout = self._client.timeout
        if isinstance(client_timeout, int | float):
            return min(left, float(client_timeout))
        return left

    def _earlier_messages(self, request: RunRequest) -> list[dict[str, Any]]:
        """The user messages and answers of the thread's runs before this one, oldest first (their tool
        calls are left out: what they found is in the answers)."""
        messages: list[dict[str, Any]] = []
        after: str | None = None
        state = self._needs_state()
        while True:
            page, more = state.messages.page(request.thread_id, limit=_PAGE, after=after)
            for entry in page:
                if entry.run_id >= request.run_id:
                    return messages
                if (chat := _as_chat(entry)) is not None:
                    messages.append(chat)
            if not more or not page:
                return messages
            after = page[-1].message_id

    def _with_files(self, request: RunRequest, message: str) -> str:
        """The turn's user content: the message, then each file's text (read from S3; a file that is not
        text, too large, not UTF-8 or gone fails the run, or the fallback to chat, naming it)."""
        if not request.files:
            return message
        state = self._needs_state()
        if state.blobs is None:
            raise UpstreamError("this chat engine has no bucket to read the run's files from")
        return inline(message, request.files, state.blobs, state.inline_bytes)

    def _logged_content(self, request: RunRequest, message: str) -> str:
        """A tool round's user content: what Start run logged with the files inlined (one read), rather than
        every file again from S3."""
        if not request.files:
            return message
        entry = self._needs_state().messages.get(request.thread_id, message_id(request.run_id, 0))
        if entry is not None and entry.content is not None:
            return entry.content
        return self._with_files(request, message)

    def _log_user_content(self, request: RunRequest, content: str) -> None:
        """The message log is the thread's history: its entry for this run's user message takes the
        inlined files' text, so later runs replay it from there (one copy: nothing re-reads the uploads,
        which S3 expires after a few days). Writing it again on a retried Start run stores the same."""
        messages = self._needs_state().messages
        entry = messages.get(request.thread_id, message_id(request.run_id, 0))
        if entry is not None and entry.content != content:
            messages.add(entry.model_copy(update={"content": content, "content_key": None}))

    def _needs_state(self) -> ChatState:
        if self._state is None:
            raise UpstreamError("this chat engine has no message log or completion store: it cannot run")
        return self._state


def _add_call_chunk(call: dict[str, Any], chunk: dict[str, Any]) -> None:
    """A tool call's chunk onto what came of it before: its id, type and name once, its arguments in parts."""
    call.setdefault("id", chunk.get("id", ""))
    call.setdefault("type", chunk.get("type", "function"))
    function = call.setdefault("function", {"name": "", "arguments": ""})
    function["name"] += chunk.get("function", {}).get("name") or ""
    function["arguments"] += chunk.get("function", {}).get("arguments") or ""


def _as_chat(entry: MessageRecord) -> dict[str, Any] | None:
    if entry.role in (MessageRole.user, MessageRole.assistant) and entry.content:
        return {"role": str(entry.role), "content": entry.content}
    return None


def _replay(rounds: list[ChatRound]) -> list[dict[str, Any]]:
    """This run so far: each round's tool outputs (answering the round before), then what the model said."""
    messages: list[dict[str, Any]] = []
    for chat_round in rounds:
        messages.extend(_tool_messages(chat_round.tool_outputs))
        message: dict[str, Any] = {"role": "assistant", "content": chat_round.content}
        if chat_round.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in chat_round.tool_calls
            ]
        messages.append(message)
    return messages


def _tool_messages(outputs: list[ToolOutput]) -> list[dict[str, Any]]:
    return [{"role": "tool", "tool_call_id": output.call_id, "content": output.output} for output in outputs]


def _function_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def _past(request: RunRequest) -> bool:
    return request.deadline_at is not None and clock.now() >= request.deadline_at
