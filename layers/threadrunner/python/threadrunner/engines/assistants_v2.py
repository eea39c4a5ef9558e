"""The ``assistants`` engine: a thread is an upstream Assistants v2 thread, a run is one upstream run that
pauses on ``requires_action`` for tool outputs. For self-hosted Assistants-compatible servers (OpenAI's
hosted Assistants API shut down on 2026-08-26).

The assistant itself is code (``assistants/<name>.yaml``), synced upstream by the AssistantRegistry
(engines/assistant_sync.py).
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol

import openai
from openai import OpenAI

from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.base import (
    AssistantDefinition,
    GeneratedFile,
    RunRequest,
    ToolOutput,
    ToolSpec,
    UpstreamRun,
    UpstreamStatus,
    UpstreamToolCall,
)
from threadrunner.engines.errors import upstream_errors, upstream_exists
from threadrunner.engines.files import FilesUpstream, UpstreamFiles
from threadrunner.errors import UpstreamError
from threadrunner.models.records import Citation, RunError, RunRecord, Usage

# The SDK marks every Assistants method deprecated (OpenAI's hosted API is gone); this engine is for the
# compatible servers that remain, so the warning tells us nothing. Only deprecations, only from this module.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=re.escape(__name__) + r"\Z")

# Cancelling is still running for the workflow: it polls on until the run has stopped.
_STATUS: dict[str, UpstreamStatus] = {"cancelling": "in_progress"}


class KnowledgeStores(Protocol):
    """The vector stores file_search searches (threadrunner.knowledge_lookup.VectorStoreLookup)."""

    def assistant_store(self, assistant: str) -> str | None: ...

    def thread_store(self, run_id: str) -> str | None: ...


class AssistantsEngine(FilesUpstream):
    name = "assistants"

    def __init__(
        self,
        client: OpenAI,
        assistants: AssistantRegistry | None = None,
        stores: KnowledgeStores | None = None,
    ) -> None:
        """Without ``assistants`` (e.g. for thread cleanup) the engine polls, cancels and deletes, but
        cannot start runs. ``stores``: file_search's (Assistants v2 takes one store on the assistant, its
        knowledge documents, and one on the thread, its own documents); None: no file_search."""
        self._client = client
        self._stores = stores
        # Creates go out once (the SDK would retry them without an idempotency key); see ResponsesEngine.
        self._create_client = client.with_options(max_retries=0)
        self._assistants = assistants
        self._files = UpstreamFiles(client, purpose="assistants")

    def create_thread(self, metadata: dict[str, str]) -> str:
        # Not a model turn: a lost create leaves an empty thread behind, never a second answer, so its
        # errors are outages like any call's (the run may fall back), not UpstreamOutcomeUnknown.
        with upstream_errors():
            return self._create_client.beta.threads.create(metadata=metadata).id

    def delete_thread(self, upstream_thread_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.beta.threads.delete(upstream_thread_id)

    def thread_exists(self, upstream_thread_id: str) -> bool:
        return upstream_exists(
            lambda: self._client.beta.threads.retrieve(upstream_thread_id), upstream_thread_id
        )

    def start(self, request: RunRequest, message: str) -> str:
        if self._assistants is None:
            raise UpstreamError("this assistants engine has no assistant registry: it cannot start runs")
        assistants, definition = self._assistants, self._with_knowledge(_definition(request))
        assistant_id = assistants.upstream_id(definition, self)
        searches = self._attach_thread_documents(request) or bool(definition.vector_store_ids)
        with upstream_errors(creating=True):
            try:
                return self._create_run(request, assistant_id, message, file_search=searches)
            except openai.NotFoundError:
                if self._assistant_exists(assistant_id):
                    raise
            # The upstream lost the assistant we recorded (deleted by hand, a new server): sync, try once more.
            assistants.forget(definition, assistant_id)
            return self._create_run(
                request, assistants.upstream_id(definition, self), message, file_search=searches
            )

    def _with_knowledge(self, definition: AssistantDefinition) -> AssistantDefinition:
        store = self._stores.assistant_store(definition.name) if self._stores is not None else None
        return definition.model_copy(update={"vector_store_ids": [store]}) if store else definition

    def _attach_thread_documents(self, request: RunRequest) -> bool:
        """Put the thread's document store on its upstream thread (file_search's thread resource); True
        when it has one."""
        store = (
            self._stores.thread_store(request.run_id) if self._stores is not None and request.run_id else None
        )
        if store is None:
            return False
        with upstream_errors():
            self._client.beta.threads.update(
                request.upstream_thread_id, tool_resources={"file_search": {"vector_store_ids": [store]}}
            )
        return True

    def poll(self, run: RunRecord) -> UpstreamRun:
        thread_id, run_id = _ids(run)
        with upstream_errors():
            upstream = self._client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        calls = []
        if upstream.status == "requires_action" and upstream.required_action is not None:
            calls = [
                UpstreamToolCall(call_id=call.id, name=call.function.name, arguments=call.function.arguments)
                for call in upstream.required_action.submit_tool_outputs.tool_calls
            ]
        error = None
        if upstream.last_error is not None:
            error = RunError(code=upstream.last_error.code, message=upstream.last_error.message)
        elif upstream.status == "incomplete" and upstream.incomplete_details is not None:
            error = RunError(code="incomplete", message=f"incomplete: {upstream.incomplete_details.reason}")
        usage = Usage()
        if upstream.usage is not None:
            usage = Usage(
                prompt_tokens=upstream.usage.prompt_tokens,
                completion_tokens=upstream.usage.completion_tokens,
                total_tokens=upstream.usage.total_tokens,
            )
        answer: str | None = None
        files: list[GeneratedFile] = []
        citations: list[Citation] = []
        if upstream.status in ("completed", "incomplete"):
            answer, files, citations = self._answer(thread_id, run_id)
        return UpstreamRun(
            status=_STATUS.get(upstream.status, upstream.status),  # type: ignore[arg-type]
            tool_calls=calls,
            answer=answer,
            usage=usage,
            error=error,
            files=files,
            citations=citations,
        )

    def submit_tool_outputs(self, request: RunRequest, run: RunRecord, outputs: list[ToolOutput]) -> str:
        """The same upstream run goes on: its id is recorded again as the next round."""
        thread_id, run_id = _ids(run)
        with upstream_errors(creating=True):
            return self._create_client.beta.threads.runs.submit_tool_outputs(
                run_id,
                thread_id=thread_id,
                tool_outputs=[
                    {"tool_call_id": output.call_id, "output": output.output} for output in outputs
                ],
            ).id

    def find_created(
        self, request: RunRequest, run: RunRecord, round_number: int, call_ids: Sequence[str]
    ) -> str | None:
        """Round 0: the thread's upstream run that carries our run id in its metadata. Round n: the same
        upstream run, unless it still waits for these very tool calls (then the outputs never arrived)."""
        if round_number == 0:
            with upstream_errors():
                runs = self._client.beta.threads.runs.list(request.upstream_thread_id, order="desc", limit=20)
            for upstream in runs.data:
                if upstream.status in ("cancelling", "cancelled"):
                    continue  # one we cancelled on purpose (stuck in the queue), never the lost one
                if (upstream.metadata or {}).get("threadrunner_run_id") == request.run_id:
                    return upstream.id
            return None
        thread_id, run_id = _ids(run)
        with upstream_errors():
            upstream = self._client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        waiting = set()
        if upstream.status == "requires_action" and upstream.required_action is not None:
            waiting = {call.id for call in upstream.required_action.submit_tool_outputs.tool_calls}
        return None if waiting & set(call_ids) else run_id

    def close_tool_calls(self, run: RunRecord, call_ids: Sequence[str]) -> None:
        return None  # the run waiting for them was cancelled, which frees its thread

    def cancel(self, run: RunRecord) -> None:
        if not run.response_ids or run.upstream_thread_id is None:
            return
        thread_id, run_id = _ids(run)
        # already finished, cancelling or gone: nothing left to stop
        with upstream_errors(), suppress(openai.NotFoundError, openai.BadRequestError, openai.ConflictError):
            self._client.beta.threads.runs.cancel(run_id, thread_id=thread_id)

    # AssistantUpstream: what the registry needs to sync assistants/<name>.yaml.
    def create_assistant(self, definition: AssistantDefinition) -> str:
        # Errors are not "outcome unknown" here: a lost create leaves an unused assistant, not a second run.
        with upstream_errors():
            return self._create_client.beta.assistants.create(**_assistant_fields(definition)).id

    def update_assistant(self, upstream_id: str, definition: AssistantDefinition) -> bool:
        with upstream_errors():
            try:
                self._client.beta.assistants.update(upstream_id, **_assistant_fields(definition))
            except openai.NotFoundError:
                return False
        return True

    def delete_assistant(self, upstream_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.beta.assistants.delete(upstream_id)

    def _create_run(self, request: RunRequest, assistant_id: str, message: str, *, file_search: bool) -> str:
        # The user message goes in with the run (additional_messages): one call, so a refused run never
        # leaves the message behind on the thread, and a retried start never adds it twice.
        tools: list[dict[str, Any]] = [_function_tool(tool) for tool in request.tools]
        if file_search:  # the run's tools replace the assistant's: file_search is named again
            tools.append({"type": "file_search"})
        user_message: dict[str, Any] = {"role": "user", "content": message}
        if request.files:
            # v2 attachments: each file with the tool that reads it (v1's message file_ids are gone).
            kinds = {_FILE_TOOL[file.purpose] for file in request.files} - {tool["type"] for tool in tools}
            tools += [{"type": kind} for kind in sorted(kinds)]
            user_message["attachments"] = [
                {"file_id": file.upstream_file_id, "tools": [{"type": _FILE_TOOL[file.purpose]}]}
                for file in request.files
            ]
        return self._create_client.beta.threads.runs.create(
            request.upstream_thread_id,
            assistant_id=assistant_id,
            model=request.model,
            instructions=request.instructions,
            tools=tools,  # type: ignore[arg-type]
            additional_messages=[user_message],  # type: ignore[list-item]
            metadata=request.metadata,
        ).id

    def _assistant_exists(self, assistant_id: str) -> bool:
        with upstream_errors():
            try:
                self._client.beta.assistants.retrieve(assistant_id)
            except openai.NotFoundError:
                return False
        return True

    def _answer(self, thread_id: str, run_id: str) -> tuple[str | None, list[GeneratedFile], list[Citation]]:
        """The run's newest assistant message, the files the run's messages show or link (``image_file``
        content, ``file_path`` annotations), and the documents its answer cites (``file_citation``)."""
        with upstream_errors():
            messages = self._client.beta.threads.messages.list(
                thread_id, run_id=run_id, order="desc", limit=20
            )
        answer = None
        files: dict[str, GeneratedFile] = {}
        cited: list[str] = []
        for message in messages.data:
            if message.role != "assistant":
                continue
            if answer is None:
                answer = "".join(part.text.value for part in message.content if part.type == "text") or None
                cited = [
                    annotation.file_citation.file_id
                    for part in message.content
                    if part.type == "text"
                    for annotation in part.text.annotations
                    if annotation.type == "file_citation"
                ]
            for part in message.content:
                if part.type == "image_file":
                    file_id = part.image_file.file_id
                    files.setdefault(file_id, GeneratedFile(name=f"{file_id}.png", file_id=file_id))
                elif part.type == "text":
                    for annotation in part.text.annotations:
                        if annotation.type == "file_path":
                            file_id = annotation.file_path.file_id
                            name = posixpath.basename(annotation.text) or file_id
                            files.setdefault(file_id, GeneratedFile(name=name, file_id=file_id))
        return answer, list(files.values()), [self._citation(file_id) for file_id in dict.fromkeys(cited)]

    def _citation(self, file_id: str) -> Citation:
        """A cited document by name (v2 annotations give its file id only; the quote is not kept)."""
        with upstream_errors():
            try:
                filename = self._client.files.retrieve(file_id).filename
            except openai.NotFoundError:
                filename = file_id  # deleted since: the id still says which document it was
        return Citation(type="file", file_id=file_id, filename=filename)


# Which tool of the run reads an attached file, by the file's purpose.
_FILE_TOOL = {"code_interpreter": "code_interpreter", "input": "file_search"}


def _definition(request: RunRequest) -> AssistantDefinition:
    if request.assistant is None:
        raise UpstreamError("the assistants engine needs the run's assistant definition")
    return request.assistant


def _assistant_fields(definition: AssistantDefinition) -> dict[str, Any]:
    tools = [_function_tool(tool) for tool in definition.tools]
    if definition.vector_store_ids:
        tools.append({"type": "file_search"})
    return {
        "model": definition.model,
        "name": definition.name,
        "description": definition.description or None,
        "instructions": definition.instructions,
        "tools": tools,
        "tool_resources": {"file_search": {"vector_store_ids": definition.vector_store_ids}},
        "metadata": {
            "threadrunner_assistant": definition.name,
            "threadrunner_content_hash": definition.content_hash,
        },
    }


def _function_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": False,
        },
    }


def _ids(run: RunRecord) -> tuple[str, str]:
    if run.current_response_id is None or run.upstream_thread_id is None:
        raise UpstreamError(f"run {run.id} has no upstream run yet")
    return run.upstream_thread_id, run.current_response_id
