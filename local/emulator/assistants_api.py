"""The Assistants API v2 endpoints: assistants, threads, their messages, runs and run steps. Their routes
(``ASSISTANTS_ROUTES``, which the app's URL map includes) and their handlers (``AssistantsApi``, which the app
calls like its own, under its lock); the state is in the stores it holds (local/emulator/assistants.py,
threads.py, runs.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from local.emulator.assistants import AssistantStore
from local.emulator.files import FileStore
from local.emulator.http_io import json_body, json_response
from local.emulator.runs import RunStore
from local.emulator.script import Script
from local.emulator.threads import ThreadStore
from local.emulator.vector_stores import VectorStores

ASSISTANTS_ROUTES = [
    Rule("/v1/assistants", methods=["POST"], endpoint="create_assistant"),
    Rule("/v1/assistants", methods=["GET"], endpoint="list_assistants"),
    Rule("/v1/assistants/<assistant_id>", methods=["GET"], endpoint="get_assistant"),
    Rule("/v1/assistants/<assistant_id>", methods=["POST"], endpoint="update_assistant"),
    Rule("/v1/assistants/<assistant_id>", methods=["DELETE"], endpoint="delete_assistant"),
    Rule("/v1/threads", methods=["POST"], endpoint="create_thread"),
    Rule("/v1/threads/<thread_id>", methods=["GET"], endpoint="get_thread"),
    Rule("/v1/threads/<thread_id>", methods=["POST"], endpoint="modify_thread"),
    Rule("/v1/threads/<thread_id>", methods=["DELETE"], endpoint="delete_thread"),
    Rule("/v1/threads/<thread_id>/messages", methods=["POST"], endpoint="create_message"),
    Rule("/v1/threads/<thread_id>/messages", methods=["GET"], endpoint="list_messages"),
    Rule("/v1/threads/<thread_id>/runs", methods=["POST"], endpoint="create_run"),
    Rule("/v1/threads/<thread_id>/runs", methods=["GET"], endpoint="list_runs"),
    Rule("/v1/threads/<thread_id>/runs/<run_id>", methods=["GET"], endpoint="get_run"),
    Rule("/v1/threads/<thread_id>/runs/<run_id>/cancel", methods=["POST"], endpoint="cancel_run"),
    Rule("/v1/threads/<thread_id>/runs/<run_id>/steps", methods=["GET"], endpoint="list_run_steps"),
    Rule(
        "/v1/threads/<thread_id>/runs/<run_id>/submit_tool_outputs",
        methods=["POST"],
        endpoint="submit_tool_outputs",
    ),
]
# What the app hands to AssistantsApi: each route's endpoint is the name of the method that answers it.
ASSISTANTS_ENDPOINTS = frozenset(str(rule.endpoint) for rule in ASSISTANTS_ROUTES)


class AssistantsApi:
    """The handlers of ``ASSISTANTS_ROUTES``. Not thread-safe by itself: the app holds its lock around every
    request."""

    def __init__(
        self,
        script: Script,
        *,
        polls: int,
        today: Callable[[], date],
        files: FileStore,
        stores: VectorStores,
    ) -> None:
        self._assistants = AssistantStore()
        self._threads = ThreadStore(file_exists=files.exists)
        self._runs = RunStore(
            self._threads,
            self._assistants,
            script,
            polls=polls,
            today=today,
            files=files,
            stores=stores,
        )

    def clear(self) -> None:
        self._assistants.clear()
        self._threads.clear()
        self._runs.clear()

    def create_assistant(self, request: Request) -> Response:
        return json_response(self._assistants.create(json_body(request)))

    def list_assistants(self, request: Request) -> Response:
        return json_response(self._assistants.list(request))

    def get_assistant(self, request: Request, assistant_id: str) -> Response:
        return json_response(self._assistants.get(assistant_id).resource())

    def update_assistant(self, request: Request, assistant_id: str) -> Response:
        return json_response(self._assistants.update(assistant_id, json_body(request)))

    def delete_assistant(self, request: Request, assistant_id: str) -> Response:
        return json_response(self._assistants.delete(assistant_id))

    def create_thread(self, request: Request) -> Response:
        return json_response(self._threads.create(json_body(request, default={})))

    def get_thread(self, request: Request, thread_id: str) -> Response:
        return json_response(self._threads.get(thread_id).resource())

    def modify_thread(self, request: Request, thread_id: str) -> Response:
        return json_response(self._threads.update(thread_id, json_body(request)))

    def delete_thread(self, request: Request, thread_id: str) -> Response:
        deleted = self._threads.delete(thread_id)
        self._runs.forget_thread(thread_id)
        return json_response(deleted)

    def create_message(self, request: Request, thread_id: str) -> Response:
        self._threads.get(thread_id)
        self._runs.ensure_idle(thread_id)
        return json_response(self._threads.create_message(thread_id, json_body(request)))

    def list_messages(self, request: Request, thread_id: str) -> Response:
        return json_response(self._threads.list_messages(thread_id, request))

    def create_run(self, request: Request, thread_id: str) -> Response:
        return json_response(self._runs.create(thread_id, json_body(request)))

    def list_runs(self, request: Request, thread_id: str) -> Response:
        return json_response(self._runs.list_page(thread_id, request))

    def get_run(self, request: Request, thread_id: str, run_id: str) -> Response:
        return json_response(self._runs.retrieve(thread_id, run_id))

    def cancel_run(self, request: Request, thread_id: str, run_id: str) -> Response:
        return json_response(self._runs.cancel(thread_id, run_id))

    def submit_tool_outputs(self, request: Request, thread_id: str, run_id: str) -> Response:
        return json_response(self._runs.submit_tool_outputs(thread_id, run_id, json_body(request)))

    def list_run_steps(self, request: Request, thread_id: str, run_id: str) -> Response:
        return json_response(self._runs.list_steps(thread_id, run_id, request))
