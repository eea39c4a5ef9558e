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
from threadrunner.errors import InvalidRequestError
from threadrunner.http import callers
from threadrunner.http.answers import answers
from threadrunner.http.openapi_document import api_document, docs_page
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
    CreateThreadRequest,
    FileList,
    FileOut,
    MessagePage,
    ThreadOut,
    ThreadPage,
)
from threadrunner.models.api_runs import (
    ApprovalsRequest,
    CreateRunRequest,
    RunOut,
    RunPage,
    RunTraceOut,
    SubmitToolOutputsRequest,
)
from threadrunner.models.run_events import RunEventPage
from threadrunner.models.usage import UsageOut
from threadrunner.observability import logger, metrics, tracer
from threadrunner.services import actions, admin, files, run_events, run_history, runs, threads, usage
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
    summary="Create a thread, or get the current one",
    description="A thread of the caller's with one assistant for one purpose. While the caller's last thread "
    "for that assistant and purpose was active within max_age_hours (default per environment), that thread is "
    "answered (200) instead of a new one (201). Takes an Idempotency-Key.",
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


@app.get(
    "/v1/threads",
    summary="List threads",
    description="The caller's live threads, newest first; pass a page's next as after for the next page.",
    responses=answers({200: "the caller's live threads"}),
)
def list_threads(
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=THREAD_ID_PATTERN, description="a page's next")] = None,
) -> Response[ThreadPage]:
    return json_response(200, threads.list_threads(default_context(), _caller(), limit=limit, after=after))


@app.get(
    "/v1/threads/<thread_id>",
    summary="Get a thread",
    description="One of the caller's threads, with its active run (active_run_id) and the runs queued after "
    "it (queued_run_ids). Another user's thread is a 404, as a missing one.",
    responses=answers({200: "the thread"}, 404),
)
def get_thread(thread_id: ThreadId) -> Response[ThreadOut]:
    return json_response(200, threads.get_thread(default_context(), _caller(), thread_id))


@app.delete(
    "/v1/threads/<thread_id>",
    summary="Delete a thread",
    description="Hides the thread at once and deletes it in the background: its upstream conversation, runs, "
    "messages and files (202); 204 when there is nothing to delete. While a run is active: 409 naming it, "
    "unless force=true, which cancels the run.",
    responses=answers({202: "deletion under way", 204: "nothing to delete"}, 409, empty=(202, 204)),
)
def delete_thread(thread_id: ThreadId, force: Annotated[bool, Query()] = False) -> Response[None]:
    accepted = threads.delete_thread(default_context(), _caller(), thread_id, force=force)
    return Response(status_code=202 if accepted else 204)


@app.get(
    "/v1/threads/<thread_id>/messages",
    summary="List a thread's messages",
    description="The thread's own log, oldest first: each run's user message, its tool calls (outputs cut to "
    "500 characters, output_truncated says so) and its answer.",
    responses=answers({200: "the thread's log"}, 404),
)
def list_messages(
    thread_id: ThreadId,
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=r"^run_[0-9a-z]{26}\.\d{4}$")] = None,
) -> Response[MessagePage]:
    page = threads.list_messages(default_context(), _caller(), thread_id, limit=limit, after=after)
    return json_response(200, page)


@app.delete(
    "/v1/users/me/data",
    summary="Delete all of the caller's data",
    description="Every thread, run, message, file, usage record and stored idempotent answer of the caller, "
    "here and upstream, is being deleted (202).",
    responses=answers({202: "deletion under way"}, empty=(202,)),
)
def delete_my_data() -> Response[None]:
    threads.delete_user_data(default_context(), _caller())
    return Response(status_code=202)


@app.post(
    "/v1/threads/<thread_id>/runs",
    summary="Start a run",
    description="Sends the message (with the thread's ready files in file_ids) to the thread's assistant; the "
    "run goes on in a Step Functions execution: poll GET /v1/runs/{run_id} until its status is terminal. While "
    "another run of the thread is active: 409 naming it, or with if_busy=enqueue 202 with queue_position. "
    "Limited per user (runs_per_minute, daily budgets: 429 with Retry-After). Takes an Idempotency-Key.",
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


@app.get(
    "/v1/threads/<thread_id>/runs",
    summary="List a thread's runs",
    description="The thread's runs, newest first, each as GET /v1/runs/{run_id} answers it; pass a page's next "
    "as after for the next page (an after that is no run of the thread: 404).",
    responses=answers({200: "the thread's runs"}, 404),
)
def list_thread_runs(
    thread_id: ThreadId,
    limit: PageSize = 20,
    after: Annotated[str | None, Query(pattern=RUN_ID_PATTERN, description="a page's next")] = None,
) -> Response[RunPage]:
    page = run_history.list_thread_runs(default_context(), _caller(), thread_id, limit=limit, after=after)
    return json_response(200, page)


@app.get(
    "/v1/runs/<run_id>",
    summary="Get a run",
    description="The run's status, answer, tool calls, usage, metrics and error, the files the model made "
    "(with download URLs), its engine (and fallback), and a link to its execution in the Step Functions console.",
    responses=answers({200: "the run"}, 404),
)
def get_run(run_id: RunId) -> Response[RunOut]:
    return json_response(200, runs.get_run(default_context(), _caller(), run_id))


@app.get(
    "/v1/runs/<run_id>/trace",
    summary="Trace a run's execution",
    description="The run's Step Functions execution state by state, in the order the states were entered: "
    "each state's name, when it was entered and exited, how long it took and, if it failed, the error's name "
    "(never what the states took in or gave out); transitions counts the states entered. A run that never got "
    "an execution (queued, or ended before it started) has no states and a null status. For the run's user and "
    "for operators (another user's run is a 404 to anyone else).",
    responses=answers({200: "the run's execution, state by state"}, 404, 503),
)
def get_run_trace(run_id: RunId) -> Response[RunTraceOut]:
    ctx, event = default_context(), app.current_event
    operator = admin.is_admin(event.request_context.authorizer.jwt_claim or {}, ctx.operator_settings)
    # The local stack has no console to link to: its trace's link is this route, at the URL asked.
    api_url = f"{event.headers.get('x-forwarded-proto', 'https')}://{event.request_context.domain_name}"
    trace = run_history.get_run_trace(ctx, _caller(), run_id, operator=operator, api_url=api_url)
    return json_response(200, trace)


@app.post(
    "/v1/runs/<run_id>/cancel",
    summary="Cancel a run",
    description="A queued run ends at once (200, the run, cancelled); an active one is cancelled upstream by "
    "its workflow's next Check run (202). An ended run is answered as it is (200).",
    responses=answers({200: "the run, ended", 202: "cancel under way"}, 404),
)
def cancel_run(run_id: RunId) -> Response[RunOut]:
    run, ended = runs.cancel_run(default_context(), _caller(), run_id)
    return json_response(200 if ended else 202, run)


@app.get(
    "/v1/runs/<run_id>/events",
    summary="Read a run's events",
    description="What the run did, as events (run.queued, run.started, model.started, model.completed, "
    "tool_call.created, tool_call.completed, action.required, action.submitted, message.delta, then one of "
    "run.completed, run.failed, run.cancelled, run.timed_out), oldest first: those after the seq `after`. With "
    "`wait` (up to 20 s) the call waits until at least one event comes or the wait ends; pass `next` as `after` "
    "to go on, so a client that reconnects misses nothing. An ended run answers at once. `stream=true` (Server-"
    "Sent Events) is served by the local stack only; deployed, long-poll or subscribe to the run's channel.",
    responses=answers({200: "the events after `after`"}, 404),
)
def list_run_events(
    run_id: RunId,
    after: Annotated[int, Query(ge=0, le=10**9, description="the seq after which to read")] = 0,
    wait: Annotated[float, Query(ge=0, le=run_events.MAX_WAIT_SECONDS, description="seconds to wait")] = 0,
    stream: Annotated[bool, Query(description="Server-Sent Events: the local stack only")] = False,
) -> Response[RunEventPage]:
    if stream:
        raise InvalidRequestError(
            "Server-Sent Events are served by the local stack only: long-poll with wait, or subscribe to "
            "the run's live channel",
            field="stream",
        )
    page = run_events.list_events(default_context(), _caller(), run_id, after=after, wait=wait)
    return json_response(200, page)


@app.post(
    "/v1/runs/<run_id>/tool_outputs",
    summary="Answer a run's client tool calls",
    description="A run in requires_action whose required_action is submit_tool_outputs waits for the "
    "application to run its client tools: post one output per waiting call (tool_call_id from "
    "required_action.tool_calls), all at once, before expires_at; the run resumes (200, the run). Unknown, "
    "missing or repeated ids, and an output over the tool output limit, are a 422 naming the field; a run not "
    "waiting for tool outputs is a 409; a repeat of the accepted submission is answered with the run.",
    responses=answers({200: "the run, resumed"}, 404, 409, body=True),
)
def submit_tool_outputs(
    run_id: RunId, request: Annotated[SubmitToolOutputsRequest, Body(embed=False)]
) -> Response[RunOut]:
    return json_response(200, actions.submit_tool_outputs(default_context(), _caller(), run_id, request))


@app.post(
    "/v1/runs/<run_id>/approvals",
    summary="Approve or deny a run's tool calls",
    description="A run in requires_action whose required_action is approve_tool_calls waits for a person to "
    "decide on each call of a tool marked approval: required, all at once, before expires_at: approved calls "
    "run, a denied one gives the model an output saying it was denied (with the reason), and the run goes on "
    "(200, the run; who decided and when is shown with each tool call). Same 409 and 422 rules as tool_outputs.",
    responses=answers({200: "the run, resumed"}, 404, 409, body=True),
)
def submit_approvals(
    run_id: RunId, request: Annotated[ApprovalsRequest, Body(embed=False)]
) -> Response[RunOut]:
    return json_response(200, actions.submit_approvals(default_context(), _caller(), run_id, request))


@app.post(
    "/v1/files",
    summary="Create a file and its upload",
    description="A pending file of one of the caller's threads, and an S3 presigned POST (upload.url, "
    "upload.fields) to send its bytes to: every field, then file, as multipart/form-data. Staging then checks "
    "the bytes and makes the file ready (or failed, with a reason). Takes an Idempotency-Key.",
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


@app.get(
    "/v1/files",
    summary="List files",
    description="The caller's files, newest first, each pending, ready or failed.",
    responses=answers({200: "the caller's files"}),
)
def list_files() -> Response[FileList]:
    return json_response(200, files.list_files(default_context(), _caller()))


@app.get(
    "/v1/files/<file_id>",
    summary="Get a file",
    description="One of the caller's files: status pending until staging has checked it, then ready (a run "
    "may take it in file_ids) or failed with a reason.",
    responses=answers({200: "the file"}, 404),
)
def get_file(file_id: FileId) -> Response[FileOut]:
    return json_response(200, files.get_file(default_context(), _caller(), file_id))


@app.delete(
    "/v1/files/<file_id>",
    summary="Delete a file",
    description="Deletes the file's upstream copy, S3 object and record in the background (202); 204 when "
    "there is nothing to delete.",
    responses=answers({202: "deletion under way", 204: "nothing to delete"}, empty=(202, 204)),
)
def delete_file(file_id: FileId) -> Response[None]:
    accepted = files.delete_file(default_context(), _caller(), file_id)
    return Response(status_code=202 if accepted else 204)


@app.get(
    "/v1/usage",
    summary="Get the caller's usage",
    description="Runs, tokens and estimated cost by UTC day, and their total. " + USAGE_RANGE + ".",
    responses=answers({200: "the caller's usage by day"}),
)
def get_usage(
    from_: Annotated[CalendarDay | None, Query(alias="from", description=USAGE_RANGE)] = None,
    to: Annotated[CalendarDay | None, Query(description=USAGE_RANGE)] = None,
) -> Response[UsageOut]:
    return json_response(200, usage.get_usage(default_context(), _caller(), from_, to))


@app.get(
    "/v1/admin/runs",
    summary="List active runs (operators)",
    description="Runs not yet ended, of every user or of user_id, oldest first. Operators only (the admin "
    "group in cognito:groups, or the threadrunner/admin scope): 403 for anyone else.",
    responses=answers({200: "active runs, every user's"}, 403),
)
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
    summary="Cancel any run (operators)",
    description="As POST /v1/runs/{run_id}/cancel, for any user's run: the kill switch for one run. "
    "Operators only.",
    responses=answers({200: "the run, ended", 202: "cancel under way"}, 403, 404),
)
def cancel_any_run(run_id: RunId) -> Response[RunOut]:
    operator = _operator()
    run, ended = admin.cancel_run(default_context(), run_id)
    logger.warning("an operator cancelled a run", extra={"operator": operator, "run_id": run_id})
    return json_response(200 if ended else 202, run)


@app.post(
    "/v1/admin/users/<user_id>/runs/cancel",
    summary="Cancel a user's runs (operators)",
    description="The kill switch for one user: their queued runs end at once (ended), their active ones are "
    "cancelled upstream (cancelling). The user id is sent percent-encoded. Operators only.",
    responses=answers({200: "what was cancelled"}, 403),
)
def cancel_user_runs(user_id: UserId) -> Response[UserRunsCancelled]:
    operator = _operator()
    cancelled = admin.cancel_user_runs(default_context(), user_id)
    logger.warning("an operator cancelled a user's runs", extra={"operator": operator, "user_id": user_id})
    return json_response(200, cancelled)


@app.get(
    "/v1/openapi.json",
    summary="Get this OpenAPI document",
    description="Every route with every status it answers, and this deployment's own limits: its assistants, "
    "file types and sizes, message length, files per run. GET /v1/docs shows it in Swagger UI.",
    responses=answers({200: "this document"}),
)
def openapi() -> Response[dict[str, Any]]:
    _caller()
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_document())


# Swagger UI, without a token (its API Gateway route has no authorizer): not an operation of the document.
@app.get("/v1/docs", include_in_schema=False, compress=True)
def docs() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=docs_page(_document()))


def _document() -> dict[str, Any]:
    ctx = default_context()
    return api_document(
        app, assistants_dir=ctx.tool_settings.assistants_dir, files=ctx.file_settings, runs=ctx.run_settings
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    default_context().idempotency.register_lambda_context(context)
    return app.resolve(event, context)
