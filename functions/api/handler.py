"""The HTTP API: routes -> threadrunner.services. Bodies, errors and 405s: threadrunner.http.resolver."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, BeforeValidator
from threadrunner import idempotency
from threadrunner.http import callers
from threadrunner.http.answers import answers
from threadrunner.http.openapi_document import api_document
from threadrunner.http.resolver import create_resolver, json_response
from threadrunner.http.route_table import PATH_PARAMETER_PATTERN
from threadrunner.models.admin import ACTIVE_RUNS_CURSOR_PATTERN, ActiveRunPage, UserRunsCancelled
from threadrunner.models.api import (
    FILE_ID_PATTERN,
    MAX_USER_ID_CHARS,
    RUN_ID_PATTERN,
    THREAD_ID_PATTERN,
    CreatedFileOut,
    CreateFileRequest,
    CreateRunRequest,
    CreateThreadRequest,
    FileList,
    FileOut,
    MessagePage,
    RunOut,
    ThreadOut,
    ThreadPage,
)
from threadrunner.models.usage import UsageOut
from threadrunner.observability import logger, metrics, tracer
from threadrunner.services import admin, files, runs, threads, usage
from threadrunner.services.context import default_context

app = create_resolver()
ThreadId = Annotated[str, Path(pattern=THREAD_ID_PATTERN)]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN)]
FileId = Annotated[str, Path(pattern=FILE_ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=100)]
# A user id in a path holds only what Powertools routes (other characters: 422); in a query, anything.
UserId = Annotated[str, Path(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=PATH_PARAMETER_PATTERN)]


def _calendar_day(value: Any) -> Any:
    """YYYY-MM-DD only: pydantic would also read ``0.0`` as 1970-01-01 (a Unix time)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day is YYYY-MM-DD")
    return value


CalendarDay = Annotated[date, BeforeValidator(_calendar_day)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        max_length=idempotency.KEY_MAX_LENGTH,
        pattern=idempotency.KEY_PATTERN,
        description="a key of the client's (a UUID, say): a repeat with the same key and body gets the first "
        "answer back and creates nothing new",
    ),
]
USAGE_RANGE = (
    "UTC days, both included: to defaults to today, from to 6 days before to; from must not be after to, "
    "and the two at most max_usage_days (92 by default) apart"
)


def _caller() -> str:
    return callers.caller(app.current_event.request_context.authorizer.jwt_claim or {})


def _operator() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    return callers.operator(claims, default_context().operator_settings)


def _once(key: str | None, request: BaseModel, create: Callable[[str], tuple[int, BaseModel]]) -> Response:
    """``create(caller)`` once per Idempotency-Key: a repeat gets the first answer (its status and body)."""
    caller = _caller()
    if key is None:
        return json_response(*create(caller))
    answer = default_context().idempotency.run(
        user_id=caller,
        key=key,
        operation=f"{app.current_event.http_method} {app.current_event.path}",
        body=request.model_dump(mode="json"),
        create=lambda: create(caller),
    )
    response = Response(
        status_code=answer.status, content_type=content_types.APPLICATION_JSON, body=answer.body
    )
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@app.post(
    "/v1/threads",
    responses=answers(
        {201: "a new thread", 200: "the caller's current thread"}, 409, 503, replay=True, body=True
    ),
)
def create_thread(
    request: Annotated[CreateThreadRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
) -> Response[ThreadOut]:
    def create(caller: str) -> tuple[int, BaseModel]:
        thread, created = threads.get_or_create_thread(default_context(), caller, request)
        return 201 if created else 200, thread

    return _once(idempotency_key, request, create)


@app.get("/v1/threads", responses=answers({200: "the caller's live threads"}))
def list_threads(
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=THREAD_ID_PATTERN, description="a page's next")] = None,
) -> Response[ThreadPage]:
    return json_response(200, threads.list_threads(default_context(), _caller(), limit=limit, after=after))


@app.get("/v1/threads/<thread_id>", responses=answers({200: "the thread"}, 404))
def get_thread(thread_id: ThreadId) -> Response[ThreadOut]:
    return json_response(200, threads.get_thread(default_context(), _caller(), thread_id))


@app.delete(
    "/v1/threads/<thread_id>",
    responses=answers({202: "deletion under way", 204: "nothing to delete"}, 409, empty=(202, 204)),
)
def delete_thread(thread_id: ThreadId, force: Annotated[bool, Query()] = False) -> Response[None]:
    accepted = threads.delete_thread(default_context(), _caller(), thread_id, force=force)
    return Response(status_code=202 if accepted else 204)


@app.get("/v1/threads/<thread_id>/messages", responses=answers({200: "the thread's log"}, 404))
def list_messages(
    thread_id: ThreadId,
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=r"^run_[0-9a-z]{26}\.\d{4}$")] = None,
) -> Response[MessagePage]:
    page = threads.list_messages(default_context(), _caller(), thread_id, limit=limit, after=after)
    return json_response(200, page)


@app.delete("/v1/users/me/data", responses=answers({202: "deletion under way"}, empty=(202,)))
def delete_my_data() -> Response[None]:
    threads.delete_user_data(default_context(), _caller())
    return Response(status_code=202)


@app.post(
    "/v1/threads/<thread_id>/runs",
    responses=answers({202: "the run, queued or started"}, 404, 409, 503, replay=True, body=True),
)
def create_run(
    thread_id: ThreadId,
    request: Annotated[CreateRunRequest, Body(embed=False)],
    idempotency_key: IdempotencyKey = None,
) -> Response[RunOut]:
    return _once(
        idempotency_key,
        request,
        lambda caller: (202, runs.create_run(default_context(), caller, thread_id, request)),
    )


@app.get("/v1/runs/<run_id>", responses=answers({200: "the run"}, 404))
def get_run(run_id: RunId) -> Response[RunOut]:
    return json_response(200, runs.get_run(default_context(), _caller(), run_id))


@app.post(
    "/v1/runs/<run_id>/cancel", responses=answers({200: "the run, ended", 202: "cancel under way"}, 404)
)
def cancel_run(run_id: RunId) -> Response[RunOut]:
    run, ended = runs.cancel_run(default_context(), _caller(), run_id)
    return json_response(200 if ended else 202, run)


@app.post(
    "/v1/files",
    responses=answers(
        {201: "the file, pending, and where to upload it"}, 404, 409, 503, replay=True, body=True
    ),
)
def create_file(
    request: Annotated[CreateFileRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
) -> Response[CreatedFileOut]:
    return _once(
        idempotency_key, request, lambda caller: (201, files.create_file(default_context(), caller, request))
    )


@app.get("/v1/files", responses=answers({200: "the caller's files"}))
def list_files() -> Response[FileList]:
    return json_response(200, files.list_files(default_context(), _caller()))


@app.get("/v1/files/<file_id>", responses=answers({200: "the file"}, 404))
def get_file(file_id: FileId) -> Response[FileOut]:
    return json_response(200, files.get_file(default_context(), _caller(), file_id))


@app.delete(
    "/v1/files/<file_id>",
    responses=answers({202: "deletion under way", 204: "nothing to delete"}, empty=(202, 204)),
)
def delete_file(file_id: FileId) -> Response[None]:
    accepted = files.delete_file(default_context(), _caller(), file_id)
    return Response(status_code=202 if accepted else 204)


@app.get("/v1/usage", responses=answers({200: "the caller's usage by day"}), description=USAGE_RANGE)
def get_usage(
    from_: Annotated[CalendarDay | None, Query(alias="from", description=USAGE_RANGE)] = None,
    to: Annotated[CalendarDay | None, Query(description=USAGE_RANGE)] = None,
) -> Response[UsageOut]:
    return json_response(200, usage.get_usage(default_context(), _caller(), from_, to))


@app.get("/v1/admin/runs", responses=answers({200: "active runs, every user's"}, 403))
def list_active_runs(
    limit: PageSize = 50,
    after: Annotated[
        str | None, Query(pattern=ACTIVE_RUNS_CURSOR_PATTERN, description="a page's next")
    ] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=MAX_USER_ID_CHARS)] = None,
) -> Response[ActiveRunPage]:
    _operator()
    page = admin.list_active_runs(default_context(), limit=limit, after=after, user_id=user_id)
    return json_response(200, page)


@app.post(
    "/v1/admin/runs/<run_id>/cancel",
    responses=answers({200: "the run, ended", 202: "cancel under way"}, 403, 404),
)
def cancel_any_run(run_id: RunId) -> Response[RunOut]:
    operator = _operator()
    run, ended = admin.cancel_run(default_context(), run_id)
    logger.warning("an operator cancelled a run", extra={"operator": operator, "run_id": run_id})
    return json_response(200 if ended else 202, run)


@app.post("/v1/admin/users/<user_id>/runs/cancel", responses=answers({200: "what was cancelled"}, 403))
def cancel_user_runs(user_id: UserId) -> Response[UserRunsCancelled]:
    operator = _operator()
    cancelled = admin.cancel_user_runs(default_context(), user_id)
    logger.warning("an operator cancelled a user's runs", extra={"operator": operator, "user_id": user_id})
    return json_response(200, cancelled)


@app.get("/v1/openapi.json", responses=answers({200: "this document"}))
def openapi() -> Response[dict[str, Any]]:
    _caller()
    ctx = default_context()
    document = api_document(
        app, assistants_dir=ctx.tool_settings.assistants_dir, files=ctx.file_settings, runs=ctx.run_settings
    )
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    default_context().idempotency.register_lambda_context(context)
    return app.resolve(event, context)
