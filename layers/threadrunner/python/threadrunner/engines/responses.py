"""The ``responses`` engine: a thread is an OpenAI Conversation, a run is one or more background responses
chained by function-call outputs on that conversation.

A streamed run's responses are created with ``stream: true`` too (only such a background response can be
streamed again later): the create keeps the first event (``response.created``, with the id) and closes the
stream; Check run reads it again from where it left off (``stream_output``, ``starting_after``)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any

import httpx2 as httpx  # the HTTP client the openai SDK is built on
import openai
from openai import OpenAI

from threadrunner.engines.base import (
    DeltaSink,
    GeneratedFile,
    HostedToolCall,
    RunRequest,
    StreamEvent,
    StreamIdle,
    ToolOutput,
    ToolSpec,
    UpstreamRun,
    UpstreamToolCall,
)
from threadrunner.engines.citations import file_citations
from threadrunner.engines.errors import upstream_errors, upstream_exists
from threadrunner.engines.files import FilesUpstream, UpstreamFiles
from threadrunner.errors import UpstreamError, UpstreamOutcomeUnknown
from threadrunner.hosted_tools import mcp_approval_response, mcp_tool, web_search_tool
from threadrunner.models.records import Citation, RunError, RunRecord, Usage

# What the model reads for a call its run never answered; the API adds at most 20 items per call.
_ABANDONED = json.dumps({"error": "the run ended before this tool call was answered"})
_ITEMS_PER_CALL = 20
# The upstream names one open call per refusal; a start closes at most this many before giving up.
_MAX_CALLS_TO_CLOSE = 10
_UNANSWERED = re.compile(r"No tool output found for function call (\S+?)\.?$")
# Stream events after which nothing follows.
_ENDED = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


class ResponsesEngine(FilesUpstream):
    name = "responses"
    _stream = False  # create responses streamed (see streaming)

    def __init__(
        self,
        client: OpenAI,
        mcp_headers: Callable[[str], dict[str, str]] | None = None,
        vector_store_ids: Callable[[RunRequest], list[str]] | None = None,
    ) -> None:
        # The stores file_search searches for a request (the assistant's knowledge, the thread's documents):
        # looked up when a response is created (threadrunner/knowledge_lookup.py); None: no file_search.
        self._vector_store_ids = vector_store_ids
        self._client = client
        # An allow-listed MCP server's headers, by the name of the secret holding them (threadrunner.secrets):
        # read when a request is built, and put in that request only.
        self._mcp_headers = mcp_headers
        # The SDK retries 408/409/429/5xx by default and sends no idempotency key: a retried create could
        # start the model twice. Creates go out once; the workflow decides what to retry.
        self._create_client = client.with_options(max_retries=0)
        # user_data: files for input_file parts and for the code interpreter's container alike.
        self._files = UpstreamFiles(client, purpose="user_data")

    def streaming(self, on_delta: DeltaSink) -> ResponsesEngine:
        """This engine creating its responses with ``stream: true``; their words are relayed by Check run
        (``stream_output``), not by the step that creates them, so ``on_delta`` is not called."""
        streamed = copy.copy(self)
        streamed._stream = True
        return streamed

    def stream_output(self, run: RunRecord, after: int | None, *, timeout: float) -> Iterator[StreamEvent]:
        with upstream_errors():
            stream = self._client.responses.retrieve(
                _current(run),
                stream=True,
                starting_after=openai.omit if after is None else after,
                timeout=timeout,
            )
        with stream, upstream_errors():
            try:
                for event in stream:
                    yield StreamEvent(
                        sequence_number=event.sequence_number,
                        delta=event.delta if event.type == "response.output_text.delta" else None,
                        ended=event.type in _ENDED,
                    )
            except httpx.TimeoutException as silence:
                raise StreamIdle(f"no stream event for {timeout:g} s") from silence
            except httpx.TransportError as error:
                raise openai.APIConnectionError(request=stream.response.request) from error

    def create_thread(self, metadata: dict[str, str]) -> str:
        # Not a model turn: a lost create leaves an empty thread behind, never a second answer, so its
        # errors are outages like any call's (the run may fall back), not UpstreamOutcomeUnknown.
        with upstream_errors():
            return self._create_client.conversations.create(metadata=metadata).id

    def delete_thread(self, upstream_thread_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.conversations.delete(upstream_thread_id)

    def thread_exists(self, upstream_thread_id: str) -> bool:
        return upstream_exists(
            lambda: self._client.conversations.retrieve(upstream_thread_id), upstream_thread_id
        )

    def start(self, request: RunRequest, message: str) -> str:
        inputs = [
            {"type": "input_file", "file_id": file.upstream_file_id}
            for file in request.files
            if file.purpose == "input"
        ]
        content: str | list[dict[str, Any]] = message
        if inputs:
            content = [{"type": "input_text", "text": message}, *inputs]
        return self._create(request, [{"role": "user", "content": content}])

    def submit_tool_outputs(self, request: RunRequest, run: RunRecord, outputs: list[ToolOutput]) -> str:
        # A decision on an MCP approval request goes back as an mcp_approval_response, not as an output.
        items = [
            {"type": "function_call_output", "call_id": o.call_id, "output": o.output}
            if o.approve is None
            else mcp_approval_response(o.call_id, o.approve, o.reason)
            for o in outputs
        ]
        return self._create(request, items)

    def poll(self, run: RunRecord) -> UpstreamRun:
        response_id = _current(run)
        with upstream_errors():
            raw = self._client.responses.with_raw_response.retrieve(response_id)
            response = raw.parse()
        poll_after = raw.headers.get("openai-poll-after-ms")
        # Look for function calls (and MCP calls waiting for approval) whatever the status says: they are what
        # the model is waiting for.
        calls = [
            UpstreamToolCall(call_id=item.call_id, name=item.name, arguments=item.arguments)
            if item.type == "function_call"
            else UpstreamToolCall(
                call_id=item.id,
                name=item.name,
                arguments=item.arguments,
                kind="mcp_approval",
                server_label=item.server_label,
            )
            for item in response.output
            if item.type in ("function_call", "mcp_approval_request")
        ]
        status = response.status or "in_progress"
        error = None
        if response.error is not None:
            error = RunError(code=str(response.error.code), message=response.error.message)
        elif status == "incomplete" and response.incomplete_details is not None:
            error = RunError(code="incomplete", message=f"incomplete: {response.incomplete_details.reason}")
        usage = Usage()
        if response.usage is not None:
            usage = Usage(
                prompt_tokens=response.usage.input_tokens,
                cached_tokens=response.usage.input_tokens_details.cached_tokens,
                completion_tokens=response.usage.output_tokens,
                reasoning_tokens=response.usage.output_tokens_details.reasoning_tokens,
                total_tokens=response.usage.total_tokens,
            )
        return UpstreamRun(
            status=status,
            tool_calls=calls,
            answer=response.output_text or None,
            usage=usage,
            error=error,
            poll_after_ms=int(poll_after) if poll_after and poll_after.isdigit() else None,
            files=_generated_files(response.output),
            hosted_calls=_mcp_calls(response.output),
            citations=[*_url_citations(response.output), *file_citations(response.output)],
        )

    def find_created(
        self, request: RunRequest, run: RunRecord, round_number: int, call_ids: Sequence[str]
    ) -> str | None:
        # The Responses API lists no responses (not by conversation, not by metadata), and conversation
        # items do not say which response added them: a lost id cannot be found again.
        raise UpstreamOutcomeUnknown(
            f"round {round_number} of run {run.id} created a response whose id was lost, "
            "and the Responses API cannot look it up"
        )

    def cancel(self, run: RunRecord) -> None:
        if not run.response_ids:
            return
        # already finished or gone: nothing left to stop
        with upstream_errors(), suppress(openai.NotFoundError, openai.BadRequestError, openai.ConflictError):
            self._client.responses.cancel(_current(run))

    def close_tool_calls(self, run: RunRecord, call_ids: Sequence[str]) -> None:
        # A conversation holding a function call without its output refuses every new response (400).
        if run.upstream_thread_id is not None:
            self._close(run.upstream_thread_id, call_ids)

    def _close(self, conversation_id: str, call_ids: Sequence[str]) -> None:
        outputs = [
            {"type": "function_call_output", "call_id": call_id, "output": _ABANDONED} for call_id in call_ids
        ]
        for start in range(0, len(outputs), _ITEMS_PER_CALL):
            with upstream_errors():
                self._client.conversations.items.create(
                    conversation_id,
                    items=outputs[start : start + _ITEMS_PER_CALL],  # type: ignore[arg-type]
                )

    def _create(self, request: RunRequest, items: list[dict[str, Any]]) -> str:
        tools: list[dict[str, Any]] = [_function_tool(tool) for tool in request.tools]
        code_files = [f.upstream_file_id for f in request.files if f.purpose == "code_interpreter"]
        if code_files:
            # A container the upstream creates (or reuses) with the files in it, for every round of the run.
            tools.append({"type": "code_interpreter", "container": {"type": "auto", "file_ids": code_files}})
        tools += self._hosted_tools(request)
        stores = self._vector_store_ids(request) if self._vector_store_ids is not None else []
        if stores:
            tools.append({"type": "file_search", "vector_store_ids": stores})
        arguments: dict[str, Any] = {
            "model": request.model,
            "instructions": request.instructions,
            "input": items,
            "tools": tools,
            "conversation": request.upstream_thread_id,
            "background": True,
            "store": True,
            "metadata": request.metadata,
        }
        if stores:  # the passages searched: a citation's quote (engines/citations.py)
            arguments["include"] = ["file_search_call.results"]
        with upstream_errors(creating=True):
            for _ in range(_MAX_CALLS_TO_CLOSE):
                try:
                    return self._created(arguments)
                except openai.BadRequestError as error:
                    open_call = _unanswered_call(error)
                    if open_call is None:
                        raise
                # A 400 created nothing. An earlier run left a call open (e.g. a response whose id was lost
                # finished with function calls): answer it with an error, then ask again.
                self._close(request.upstream_thread_id, [open_call])
            return self._created(arguments)

    def _hosted_tools(self, request: RunRequest) -> list[dict[str, Any]]:
        hosted = request.hosted
        tools = [web_search_tool()] if hosted.web_search else []
        for server in hosted.mcp:
            secret = hosted.mcp_secrets.get(server.server_label)
            tools.append(mcp_tool(server, self._headers(secret) if secret else None))
        return tools

    def _headers(self, secret_name: str) -> dict[str, str]:
        if self._mcp_headers is not None:
            return self._mcp_headers(secret_name)
        from threadrunner.secrets import mcp_headers

        return mcp_headers(secret_name)

    def _created(self, arguments: dict[str, Any]) -> str:
        """Create the response; its id. Streamed: the id of its first event, and the stream is closed (the
        background response goes on; Check run reads the stream again)."""
        if not self._stream:
            return self._create_client.responses.create(**arguments).id
        try:
            with self._create_client.responses.create(**arguments, stream=True) as events:
                for event in events:
                    created = getattr(event, "response", None)
                    if created is not None:
                        return str(created.id)
        except httpx.TransportError as error:
            raise UpstreamOutcomeUnknown(
                f"the create's stream broke before its first event: {error!r}"
            ) from error
        raise UpstreamOutcomeUnknown("the create's stream ended before naming the response")


def _function_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": False,
    }


def _generated_files(output: list[Any]) -> list[GeneratedFile]:
    """Every container file the answer cites (``container_file_citation``), once each."""
    found: dict[str, GeneratedFile] = {}
    for item in output:
        if item.type != "message":
            continue
        for part in item.content:
            for annotation in getattr(part, "annotations", None) or []:
                if annotation.type == "container_file_citation":
                    found.setdefault(
                        annotation.file_id,
                        GeneratedFile(
                            name=annotation.filename,
                            file_id=annotation.file_id,
                            container_id=annotation.container_id,
                        ),
                    )
    return list(found.values())


def _mcp_calls(output: list[Any]) -> list[HostedToolCall]:
    """The MCP calls the upstream made in this response (``mcp_call`` items), with their outputs or errors."""
    calls = []
    for item in output:
        if item.type != "mcp_call":
            continue
        error = item.error
        if error is not None and not isinstance(error, str):
            error = json.dumps(error.model_dump(mode="json") if hasattr(error, "model_dump") else error)
        calls.append(
            HostedToolCall(
                call_id=item.id,
                name=item.name,
                arguments=item.arguments,
                server_label=item.server_label,
                output=item.output,
                error=error,
                approval_request_id=item.approval_request_id,
            )
        )
    return calls


def _url_citations(output: list[Any]) -> list[Citation]:
    """The web pages the answer cites (web_search's ``url_citation`` annotations), once each, in order."""
    found: dict[str, Citation] = {}
    for item in output:
        if item.type != "message":
            continue
        for part in item.content:
            for annotation in getattr(part, "annotations", None) or []:
                if annotation.type == "url_citation":
                    found.setdefault(
                        annotation.url,
                        Citation(type="url", url=annotation.url, title=annotation.title or None),
                    )
    return list(found.values())


def _unanswered_call(error: openai.BadRequestError) -> str | None:
    """The call id in the upstream's "No tool output found for function call <id>." refusal."""
    body = error.body if isinstance(error.body, dict) else {}
    found = _UNANSWERED.search(str(body.get("message") or error.message))
    return found.group(1) if found else None


def _current(run: RunRecord) -> str:
    if run.current_response_id is None:
        raise UpstreamError(f"run {run.id} has no upstream response yet")
    return run.current_response_id
