"""The HTTP API: routes -> threadrunner.services; domain errors -> HTTP, in one place."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, BeforeValidator
from threadrunner import clock, idempotency
from threadrunner.budgets import BudgetExceededError
from threadrunner.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
    ServiceUnavailableError,
    ThreadrunnerError,
)
from threadrunner.models.admin import ActiveRunPage, UserRunsCancelled
from threadrunner.models.api import (
    FILE_ID_PATTERN,
    CreatedFileOut,
    CreateFileRequest,
    CreateRunRequest,
    CreateThreadRequest,
    ErrorOut,
    FileList,
    FileOut,
    GatewayErrorOut,
    MessagePage,
    RunOut,
    ThreadOut,
    ThreadPage,
)
from threadrunner.models.usage import BudgetExceededOut, UsageOut
from threadrunner.observability import logger, metrics, tracer
from threadrunner.services import admin, files, runs, threads, usage
from threadrunner.services.context import default_context

app = APIGatewayHttpResolver(enable_validation=True)
ThreadId = Annotated[str, Path(pattern=r"^thr_[0-9a-z]{26}$")]
RunId = Annotated[str, Path(pattern=r"^run_[0-9a-z]{26}$")]
FileId = Annotated[str, Path(pattern=FILE_ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=100)]
UserId = Annotated[str, Path(min_length=1, max_length=256)]


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


# What each route may answer, for the OpenAPI document (schemathesis holds the API to it: tests/e2e/test_fuzz.py).
# Errors share one body (ErrorOut); 401 and 429 may also come from API Gateway, with only a message.
_ERRORS: dict[int, str] = {
    401: "the token has no subject (API Gateway refuses a missing or invalid token itself, with a 401)",
    403: "this route is for operators only",
    404: "no such resource of the caller's (another user's is not found either)",
    409: "a conflict: the thread has an active run, a file is not ready, or a request with this "
    "Idempotency-Key is still in progress",
    422: "bad input: the body names the field (or the Idempotency-Key header)",
    429: "over a limit of the caller's: runs per minute or a daily budget; Retry-After says when to retry",
    503: "a service behind the API is unavailable; try again",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true: the first answer to this Idempotency-Key, repeated",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _answers(success: dict[int, str], *errors: int, empty: tuple[int, ...] = (), replay: bool = False) -> Any:
    """``responses=`` for a route: its successes (bodies from its return type, or ``empty``), its errors."""
    answers: dict[int, Any] = {}
    for status, description in success.items():
        answers[status] = {"description": description}
        if status in empty:
            answers[status]["content"] = {}
        elif replay:
            answers[status]["headers"] = _REPLAYED
    for status in sorted({401, 422, *errors}):
        model = GatewayErrorOut if status in (401, 429) else ErrorOut
        answers[status] = {"description": _ERRORS[status], "content": {"application/json": {"model": model}}}
        if status == 429:
            answers[status]["headers"] = _RETRY_AFTER
    return answers


class Unauthorized(ThreadrunnerError):
    code = "unauthorized"


class Forbidden(ThreadrunnerError):
    code = "forbidden"


def _caller() -> str:
    """The user is the token's subject, checked by the JWT authorizer; never a field of the body."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token has no subject")
    return str(subject)


def _operator() -> str:
    """The kill switch: the route exists for every caller, but only operators may use it (403)."""
    caller = _caller()
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    if not admin.is_admin(claims, default_context().operator_settings):
        raise Forbidden("this route is for operators only")
    return caller


def _json(status: int, body: BaseModel) -> Response:
    # A dict, not JSON text: with validation on, Powertools checks it against the route's response model.
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json", exclude_none=isinstance(body, ErrorOut)),
    )


def _once(key: str | None, request: BaseModel, create: Callable[[str], tuple[int, BaseModel]]) -> Response:
    """``create(caller)`` once per Idempotency-Key: a repeat gets the first answer (its status and body)."""
    caller = _caller()
    if key is None:
        return _json(*create(caller))
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
    responses=_answers({201: "a new thread", 200: "the caller's current thread"}, 409, 503, replay=True),
)
def create_thread(
    request: Annotated[CreateThreadRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
) -> Response[ThreadOut]:
    def create(caller: str) -> tuple[int, BaseModel]:
        thread, created = threads.get_or_create_thread(default_context(), caller, request)
        return 201 if created else 200, thread

    return _once(idempotency_key, request, create)


@app.get("/v1/threads", responses=_answers({200: "the caller's live threads"}))
def list_threads(
    limit: PageSize = 20, after: Annotated[str | None, Query(max_length=200)] = None
) -> Response[ThreadPage]:
    return _json(200, threads.list_threads(default_context(), _caller(), limit=limit, after=after))


@app.get("/v1/threads/<thread_id>", responses=_answers({200: "the thread"}, 404))
def get_thread(thread_id: ThreadId) -> Response[ThreadOut]:
    return _json(200, threads.get_thread(default_context(), _caller(), thread_id))


@app.delete(
    "/v1/threads/<thread_id>",
    responses=_answers({202: "deletion under way", 204: "nothing to delete"}, 409, empty=(202, 204)),
)
def delete_thread(thread_id: ThreadId, force: Annotated[bool, Query()] = False) -> Response[None]:
    accepted = threads.delete_thread(default_context(), _caller(), thread_id, force=force)
    return Response(status_code=202 if accepted else 204)


@app.get("/v1/threads/<thread_id>/messages", responses=_answers({200: "the thread's log"}, 404))
def list_messages(
    thread_id: ThreadId,
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=r"^run_[0-9a-z]{26}\.\d{4}$")] = None,
) -> Response[MessagePage]:
    page = threads.list_messages(default_context(), _caller(), thread_id, limit=limit, after=after)
    return _json(200, page)


@app.delete("/v1/users/me/data", responses=_answers({202: "deletion under way"}, empty=(202,)))
def delete_my_data() -> Response[None]:
    threads.delete_user_data(default_context(), _caller())
    return Response(status_code=202)


@app.post(
    "/v1/threads/<thread_id>/runs",
    responses=_answers({202: "the run, queued or started"}, 404, 409, 429, 503, replay=True),
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


@app.get("/v1/runs/<run_id>", responses=_answers({200: "the run"}, 404))
def get_run(run_id: RunId) -> Response[RunOut]:
    return _json(200, runs.get_run(default_context(), _caller(), run_id))


@app.post(
    "/v1/runs/<run_id>/cancel", responses=_answers({200: "the run, ended", 202: "cancel under way"}, 404)
)
def cancel_run(run_id: RunId) -> Response[RunOut]:
    run, ended = runs.cancel_run(default_context(), _caller(), run_id)
    return _json(200 if ended else 202, run)


@app.post(
    "/v1/files",
    responses=_answers({201: "the file, pending, and where to upload it"}, 404, 409, 503, replay=True),
)
def create_file(
    request: Annotated[CreateFileRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
) -> Response[CreatedFileOut]:
    return _once(
        idempotency_key, request, lambda caller: (201, files.create_file(default_context(), caller, request))
    )


@app.get("/v1/files", responses=_answers({200: "the caller's files"}))
def list_files() -> Response[FileList]:
    return _json(200, files.list_files(default_context(), _caller()))


@app.get("/v1/files/<file_id>", responses=_answers({200: "the file"}, 404))
def get_file(file_id: FileId) -> Response[FileOut]:
    return _json(200, files.get_file(default_context(), _caller(), file_id))


@app.delete(
    "/v1/files/<file_id>",
    responses=_answers({202: "deletion under way", 204: "nothing to delete"}, empty=(202, 204)),
)
def delete_file(file_id: FileId) -> Response[None]:
    accepted = files.delete_file(default_context(), _caller(), file_id)
    return Response(status_code=202 if accepted else 204)


@app.get("/v1/usage", responses=_answers({200: "the caller's usage by day"}))
def get_usage(
    from_: Annotated[CalendarDay | None, Query(alias="from")] = None,
    to: Annotated[CalendarDay | None, Query()] = None,
) -> Response[UsageOut]:
    return _json(200, usage.get_usage(default_context(), _caller(), from_, to))


@app.get("/v1/admin/runs", responses=_answers({200: "active runs, every user's"}, 403))
def list_active_runs(
    limit: PageSize = 50,
    after: Annotated[str | None, Query(max_length=2000)] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> Response[ActiveRunPage]:
    _operator()
    page = admin.list_active_runs(default_context(), limit=limit, after=after, user_id=user_id)
    return _json(200, page)


@app.post(
    "/v1/admin/runs/<run_id>/cancel",
    responses=_answers({200: "the run, ended", 202: "cancel under way"}, 403, 404),
)
def cancel_any_run(run_id: RunId) -> Response[RunOut]:
    operator = _operator()
    run, ended = admin.cancel_run(default_context(), run_id)
    logger.warning("an operator cancelled a run", extra={"operator": operator, "run_id": run_id})
    return _json(200 if ended else 202, run)


@app.post("/v1/admin/users/<user_id>/runs/cancel", responses=_answers({200: "what was cancelled"}, 403))
def cancel_user_runs(user_id: UserId) -> Response[UserRunsCancelled]:
    operator = _operator()
    cancelled = admin.cancel_user_runs(default_context(), user_id)
    logger.warning("an operator cancelled a user's runs", extra={"operator": operator, "user_id": user_id})
    return _json(200, cancelled)


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    schema = app.get_openapi_json_schema(title="threadrunner", version="1.0.0")
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=schema)


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response:
    problems = error.errors()
    first = problems[0] if problems else {}
    where = first.get("loc", ())
    location = [str(part) for part in where if part not in ("body", "path", "query", "header")]
    field = ".".join(location) or None
    if field and where and where[0] == "header":  # as a person writes it: Idempotency-Key
        field = "-".join(word.capitalize() for word in field.split("-"))
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid request"))
    return _json(422, ErrorOut(code="invalid_request", message=message, field=field))


@app.exception_handler(UnicodeDecodeError)
def undecodable_body(error: UnicodeDecodeError) -> Response:
    if not app.current_event.is_base64_encoded:
        return internal(error)  # not the request's body: a bug of ours
    # API Gateway hands a body that is not UTF-8 over as base64; JSON must be UTF-8 (RFC 8259).
    return _json(422, ErrorOut(code="invalid_request", message="body: not UTF-8 JSON", field="body"))


@app.exception_handler(InvalidRequestError)
def invalid_value(error: InvalidRequestError) -> Response:
    return _json(422, ErrorOut(code=error.code, message=str(error), field=error.field))


@app.exception_handler(NotFoundError)
def not_found(error: NotFoundError) -> Response:
    return _json(404, ErrorOut(code=error.code, message=str(error)))


@app.exception_handler(ConflictError)
def conflict(error: ConflictError) -> Response:
    return _json(409, ErrorOut(code=error.code, message=str(error), **error.details))


@app.exception_handler(Unauthorized)
def unauthorized(error: Unauthorized) -> Response:
    return _json(401, ErrorOut(code=error.code, message=str(error)))


@app.exception_handler(Forbidden)
def forbidden(error: Forbidden) -> Response:
    return _json(403, ErrorOut(code=error.code, message=str(error)))


@app.exception_handler(BudgetExceededError)
def over_budget(error: BudgetExceededError) -> Response:
    body = BudgetExceededOut(
        code=error.code,
        message=str(error),
        budget=error.budget,
        limit=error.limit,
        used=error.used,
        resets_at=error.resets_at,
    )
    response = _json(429, body)
    response.headers["Retry-After"] = str(clock.retry_after(error.resets_at, clock.now()))
    return response


@app.exception_handler(RateLimitExceededError)
def rate_limited(error: RateLimitExceededError) -> Response:
    response = _json(429, ErrorOut(code=error.code, message=str(error)))
    response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


@app.exception_handler(ServiceUnavailableError)
def unavailable(error: ServiceUnavailableError) -> Response:
    return _json(503, ErrorOut(code=error.code, message=str(error)))


@app.not_found
def no_route(_: Exception) -> Response:
    return _json(404, ErrorOut(code="not_found", message="no such route"))


@app.exception_handler(Exception)
def internal(error: Exception) -> Response:
    logger.exception("unhandled error")  # the stack trace goes to the log, never to the caller
    return _json(500, ErrorOut(code="internal_error", message="internal error"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    default_context().idempotency.register_lambda_context(context)
    return app.resolve(event, context)
