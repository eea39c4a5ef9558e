"""The emulator as a WSGI application: auth, routing, scripted HTTP failures, and the exchange log; the
handlers of Responses, Conversations, Chat Completions and Files. The Assistants v2 handlers are
local/emulator/assistants_api.py; reading requests and writing answers, local/emulator/http_io.py."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any, TypeVar

from threadrunner.clock import now
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from local.emulator.assistants_api import ASSISTANTS_ENDPOINTS, ASSISTANTS_ROUTES, AssistantsApi
from local.emulator.chat import ChatCompletions
from local.emulator.containers import ContainerStore
from local.emulator.conversations import ConversationStore
from local.emulator.errors import ApiError, scripted_http_error, unauthorized
from local.emulator.exchange import Exchange
from local.emulator.files import FileStore
from local.emulator.hosted_tools import HostedTools
from local.emulator.http_io import (
    MalformedResponse,
    SlowResponse,
    StreamedResponse,
    exchange_of,
    form_object,
    int_arg,
    json_body,
    json_response,
    paced,
)
from local.emulator.items import new_id
from local.emulator.responses import ResponseStore, StoredResponse, resource
from local.emulator.script import HttpCall, HttpErrorPlan, Plan, Script
from local.emulator.streams import advance, chat_chunks, data_only, response_events, tick_seconds
from local.emulator.vector_stores import VECTOR_STORE_ROUTES, VectorStores
from local.emulator.webhook_delivery import Webhooks
from local.emulator.webhook_endpoints import WEBHOOK_ROUTES

logger = logging.getLogger(__name__)
T = TypeVar("T")

_ROUTES = Map(
    [
        Rule("/v1/conversations", methods=["POST"], endpoint="create_conversation"),
        Rule("/v1/conversations/<conversation_id>", methods=["GET"], endpoint="get_conversation"),
        Rule("/v1/conversations/<conversation_id>", methods=["DELETE"], endpoint="delete_conversation"),
        Rule("/v1/conversations/<conversation_id>/items", methods=["GET"], endpoint="list_items"),
        Rule("/v1/conversations/<conversation_id>/items", methods=["POST"], endpoint="add_items"),
        Rule("/v1/responses", methods=["POST"], endpoint="create_response"),
        Rule("/v1/responses/<response_id>", methods=["GET"], endpoint="get_response"),
        Rule("/v1/responses/<response_id>", methods=["DELETE"], endpoint="delete_response"),
        Rule("/v1/responses/<response_id>/cancel", methods=["POST"], endpoint="cancel_response"),
        Rule("/v1/chat/completions", methods=["POST"], endpoint="create_chat_completion"),
        Rule("/v1/files", methods=["POST"], endpoint="create_file"),
        Rule("/v1/files", methods=["GET"], endpoint="list_files"),
        Rule("/v1/files/<file_id>", methods=["GET"], endpoint="get_file"),
        Rule("/v1/files/<file_id>", methods=["DELETE"], endpoint="delete_file"),
        Rule("/v1/files/<file_id>/content", methods=["GET"], endpoint="file_content"),
        Rule(
            "/v1/containers/<container_id>/files/<file_id>/content",
            methods=["GET"],
            endpoint="container_file_content",
        ),
        *ASSISTANTS_ROUTES,
        *WEBHOOK_ROUTES,
        *VECTOR_STORE_ROUTES,
    ]
)

# Which routes a scripted ``Plan.http_error(on=...)`` applies to: ``create`` is any call that starts a turn.
_SCRIPTABLE_CALLS: dict[str, HttpCall] = {
    "create_response": "create",
    "create_chat_completion": "create",
    "get_response": "retrieve",
    "cancel_response": "cancel",
    "create_run": "create",
    "submit_tool_outputs": "create",
    "get_run": "retrieve",
    "cancel_run": "cancel",
    "create_file": "upload",
}


class EmulatorApp:
    """All state lives here, behind one lock: requests are served one at a time, which is plenty."""

    def __init__(
        self,
        *,
        polls: int,
        poll_after_ms: int,
        api_key: str | None,
        today: Callable[[], date] | None = None,
        model_seconds: float | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._api_key = api_key
        self._model_seconds = model_seconds
        self._poll_after_ms = poll_after_ms
        self._script = Script()
        self._conversations = ConversationStore()
        self._files = FileStore()
        self._containers = ContainerStore()
        self._vector_stores = VectorStores(self._files)
        self._hosted_tools = HostedTools(self._vector_stores)
        self._responses = ResponseStore(
            self._conversations,
            self._script,
            polls=polls,
            today=today or (lambda: now().date()),
            files=self._files,
            containers=self._containers,
            model_seconds=model_seconds,
            hosted=self._hosted_tools,
        )
        self._chat = ChatCompletions(
            self._script, poll_after_ms=poll_after_ms, today=today or (lambda: now().date())
        )
        self._assistants_api = AssistantsApi(
            self._script,
            polls=polls,
            today=today or (lambda: now().date()),
            files=self._files,
            stores=self._vector_stores,
        )
        self._exchanges: list[Exchange] = []
        self._internal_errors: list[str] = []
        self.webhooks = Webhooks(lock=self._lock, finish=self._responses.retrieve)
        # A slow chat completion waits outside the lock; reset() wakes it, and its exchange then belongs to
        # no test (the generation moved on).
        self._wake = threading.Event()
        self._generation = 0

    # The test-facing side.
    def script(self, *plans: Plan | HttpErrorPlan) -> None:
        with self._lock:
            self._script.add(*plans)

    def hosted(self, use: Callable[[VectorStores, HostedTools], T]) -> T:
        """``use`` of the vector stores and the hosted tools' knobs and records, under the lock."""
        with self._lock:
            return use(self._vector_stores, self._hosted_tools)

    @property
    def pending_plans(self) -> int:
        with self._lock:
            return self._script.pending

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    @property
    def internal_errors(self) -> list[str]:
        with self._lock:
            return list(self._internal_errors)

    def open_calls(self) -> list[str]:
        with self._lock:
            responses = [f"response {rid} still running" for rid in self._responses.open_ids()]
            calls = [
                f"conversation {cid} waits for the output of {', '.join(ids)}"
                for cid, ids in self._conversations.with_unanswered_calls().items()
            ]
            return responses + calls

    def completion_times(self) -> dict[str, float]:
        with self._lock:
            return self._responses.completion_times()

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._conversations.clear()
            self._responses.clear()
            self._files.clear()
            self._containers.clear()
            self._vector_stores.clear()
            self._hosted_tools.reset()
            self._assistants_api.clear()
            self._exchanges.clear()
            self._internal_errors.clear()
            self.webhooks.reset()
            self._generation += 1
            self._wake.set()
            self._wake = threading.Event()

    # The HTTP side.
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data()  # cached first, so the exchange log keeps the raw body even of multipart uploads
        with self._lock:
            response = self._answer(request)
            response.headers.setdefault("x-request-id", new_id("req"))
            generation, wake = self._generation, self._wake
        if isinstance(response, SlowResponse):
            wake.wait(response.delay_seconds)  # the model "thinking": other requests go on meanwhile
        if isinstance(response, StreamedResponse):  # its exchange is logged once the stream has ended
            response.response = self._logged_stream(request, response, response.iter_encoded(), generation)
            return response(environ, start_response)
        with self._lock:
            if generation == self._generation:
                self._exchanges.append(exchange_of(request, response))
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            adapter = _ROUTES.bind_to_environ(request.environ)
            try:
                endpoint, arguments = adapter.match()
            except HTTPException:
                raise ApiError(404, f"Invalid URL ({request.method} {request.path})") from None
            call = _SCRIPTABLE_CALLS.get(endpoint)
            if call is not None and (failure := self._script.next_failure(call)) is not None:
                if failure.malformed:
                    return MalformedResponse('{"id": "resp_', status=200, mimetype="application/json")
                if failure.delay_seconds:
                    error = scripted_http_error(failure)
                    return SlowResponse.of(error.body(), failure.delay_seconds, status=error.status)
                raise scripted_http_error(failure)
            handler: Callable[..., Response] = (
                getattr(self._assistants_api, endpoint)
                if endpoint in ASSISTANTS_ENDPOINTS
                else getattr(self, f"_{endpoint}")
            )
            return handler(request, **arguments)
        except ApiError as error:
            return json_response(error.body(), status=error.status, headers=error.headers)
        except Exception as error:  # a bug in the emulator: answer like the real 500, and let tests see it
            logger.exception("emulator failed on %s %s", request.method, request.path)
            self._internal_errors.append(f"{request.method} {request.path}: {error!r}")
            crash = ApiError(
                500, "The server had an error while processing your request.", type="server_error"
            )
            return json_response(crash.body(), status=crash.status)

    def _authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        if self._api_key is not None and key.strip() != self._api_key:
            raise unauthorized(f"Incorrect API key provided: {key[:3]}***{key[-4:]}.", code="invalid_api_key")

    # Conversations.
    def _create_conversation(self, request: Request) -> Response:
        return json_response(self._conversations.create(json_body(request, default={})))

    def _get_conversation(self, request: Request, conversation_id: str) -> Response:
        return json_response(self._conversations.retrieve(conversation_id))

    def _delete_conversation(self, request: Request, conversation_id: str) -> Response:
        return json_response(self._conversations.delete(conversation_id))

    def _list_items(self, request: Request, conversation_id: str) -> Response:
        return json_response(
            self._conversations.list_items(
                conversation_id,
                order=request.args.get("order", "desc"),
                limit=int_arg(request, "limit", 20),
                after=request.args.get("after"),
            )
        )

    def _add_items(self, request: Request, conversation_id: str) -> Response:
        return json_response(self._conversations.add_items(conversation_id, json_body(request)))

    # Responses.
    def _create_response(self, request: Request) -> Response:
        response = self._responses.create(json_body(request))
        if response.request.stream:
            return self._response_stream(response.id, after=-1)
        return self._response(response)

    def _get_response(self, request: Request, response_id: str) -> Response:
        if request.args.get("stream", "false").lower() == "true":
            self._responses.streamed(response_id)
            return self._response_stream(response_id, after=int_arg(request, "starting_after", -1))
        return self._response(self._responses.retrieve(response_id))

    def _cancel_response(self, request: Request, response_id: str) -> Response:
        return self._response(self._responses.cancel(response_id))

    def _delete_response(self, request: Request, response_id: str) -> Response:
        return json_response(self._responses.delete(response_id))

    def _response(self, response: StoredResponse) -> Response:
        # The real service tells pollers how long to wait while a response runs.
        headers = {} if response.final else {"openai-poll-after-ms": str(self._poll_after_ms)}
        self.webhooks.watch(response)
        return json_response(resource(response), headers=headers)

    def _response_stream(self, response_id: str, *, after: int) -> Response:
        """The response's events after ``after``, then the model's as they come (local/emulator/streams.py)."""
        generation, wake = self._generation, self._wake

        def look() -> tuple[list[dict[str, Any]], bool, float] | None:
            with self._lock:
                if generation != self._generation:
                    return None  # reset: this stream belongs to no test any more
                try:
                    response = self._responses.retrieve(response_id)
                except ApiError:
                    return None  # deleted meanwhile: the stream ends
                self.webhooks.watch(response)
                done = advance(response, self._model_seconds)
                return (
                    list(response.events),
                    done,
                    tick_seconds(response, self._model_seconds, self._poll_after_ms),
                )

        return StreamedResponse(response_events(look, after, wake.wait), mimetype="text/event-stream")

    def _logged_stream(
        self, request: Request, response: Response, chunks: Iterator[bytes], generation: int
    ) -> Iterator[bytes]:
        sent = bytearray()
        try:
            for chunk in chunks:
                sent += chunk
                yield chunk
        finally:  # ended, or the client closed it (a create step keeps only the first event)
            with self._lock:
                if generation == self._generation:
                    self._exchanges.append(exchange_of(request, response, body=bytes(sent)))

    def _webhook_api(self, request: Request, **arguments: str) -> Response:
        return json_response(self.webhooks.answer(request, json_body(request, default={}), **arguments))

    # Vector stores (local/emulator/vector_stores.py).
    def _vector_store_api(self, request: Request, **arguments: str) -> Response:
        return json_response(self._vector_stores.answer(request, json_body(request, default={}), **arguments))

    def _vector_store_search(self, request: Request, vector_store_id: str) -> Response:
        return json_response(self._vector_stores.search_page(vector_store_id, json_body(request, default={})))

    # Chat Completions: answered in the call, after the plan's delay.
    def _create_chat_completion(self, request: Request) -> Response:
        completion = self._chat.create(json_body(request))
        if completion.stream:
            chunks = [
                data_only(chunk)
                for chunk in chat_chunks(completion.body, include_usage=completion.include_usage)
            ]
            pause = completion.delay_seconds / len(chunks)
            wake = self._wake
            return StreamedResponse(
                paced([*chunks, data_only("[DONE]")], pause, wake.wait), mimetype="text/event-stream"
            )
        if not completion.delay_seconds:
            return json_response(completion.body)
        return SlowResponse.of(completion.body, completion.delay_seconds)

    # Files.
    def _create_file(self, request: Request) -> Response:
        upload = request.files.get("file")
        return json_response(
            self._files.create(
                upload.filename if upload else None,
                upload.read() if upload else None,
                request.form.get("purpose"),
                form_object(request, "expires_after"),
            )
        )

    def _list_files(self, request: Request) -> Response:
        return json_response(
            self._files.list(
                purpose=request.args.get("purpose"),
                order=request.args.get("order", "desc"),
                limit=int_arg(request, "limit", 10_000),
                after=request.args.get("after"),
            )
        )

    def _get_file(self, request: Request, file_id: str) -> Response:
        return json_response(self._files.get(file_id).resource())

    def _delete_file(self, request: Request, file_id: str) -> Response:
        return json_response(self._files.delete(file_id))

    def _file_content(self, request: Request, file_id: str) -> Response:
        return Response(self._files.get(file_id).data, mimetype="application/octet-stream")

    def _container_file_content(self, request: Request, container_id: str, file_id: str) -> Response:
        return Response(
            self._containers.file(container_id, file_id).data, mimetype="application/octet-stream"
        )
