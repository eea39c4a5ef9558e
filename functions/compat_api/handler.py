"""The Assistants-v2-compatible API under /compat/v1: routes -> threadrunner.compat. Errors in OpenAI's
envelope: threadrunner.compat.http."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadrunner.compat import assistants_api, files_api, runs_api, threads_api
from threadrunner.compat.http import answer, body_of, create_resolver, raw_body
from threadrunner.compat.streams import EventStream
from threadrunner.http import callers
from threadrunner.observability import logger, metrics, tracer
from threadrunner.services.context import default_context

app = create_resolver()
V1 = "/compat/v1"


def _caller() -> str:
    return callers.caller(app.current_event.request_context.authorizer.jwt_claim or {})


def _run_answer(result: dict[str, Any] | EventStream) -> Response[Any]:
    """A run as JSON, or its events (``stream: true``)."""
    if isinstance(result, EventStream):
        return Response(status_code=200, content_type="text/event-stream", body=result.text)
    return answer(result)


def _query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


@app.post(f"{V1}/assistants")
def create_assistant() -> Response[Any]:
    return answer(assistants_api.create(default_context(), _caller(), body_of(app)))


@app.get(f"{V1}/assistants")
def list_assistants() -> Response[Any]:
    return answer(assistants_api.list_page(default_context(), _caller(), _query()))


@app.get(f"{V1}/assistants/<assistant_id>")
def retrieve_assistant(assistant_id: str) -> Response[Any]:
    return answer(assistants_api.retrieve(default_context(), _caller(), assistant_id))


@app.post(f"{V1}/assistants/<assistant_id>")
def update_assistant(assistant_id: str) -> Response[Any]:
    return answer(assistants_api.update(default_context(), _caller(), assistant_id, body_of(app)))


@app.delete(f"{V1}/assistants/<assistant_id>")
def delete_assistant(assistant_id: str) -> Response[Any]:
    return answer(assistants_api.delete(default_context(), _caller(), assistant_id))


@app.post(f"{V1}/threads")
def create_thread() -> Response[Any]:
    return answer(threads_api.create(default_context(), _caller(), body_of(app)))


@app.post(f"{V1}/threads/runs")
def create_thread_and_run() -> Response[Any]:
    return _run_answer(runs_api.create_thread_and_run(default_context(), _caller(), body_of(app)))


@app.get(f"{V1}/threads/<thread_id>")
def retrieve_thread(thread_id: str) -> Response[Any]:
    return answer(threads_api.retrieve(default_context(), _caller(), thread_id))


@app.post(f"{V1}/threads/<thread_id>")
def update_thread(thread_id: str) -> Response[Any]:
    return answer(threads_api.update(default_context(), _caller(), thread_id, body_of(app)))


@app.delete(f"{V1}/threads/<thread_id>")
def delete_thread(thread_id: str) -> Response[Any]:
    return answer(threads_api.delete(default_context(), _caller(), thread_id))


@app.post(f"{V1}/threads/<thread_id>/messages")
def create_message(thread_id: str) -> Response[Any]:
    return answer(threads_api.create_message(default_context(), _caller(), thread_id, body_of(app)))


@app.get(f"{V1}/threads/<thread_id>/messages")
def list_messages(thread_id: str) -> Response[Any]:
    return answer(threads_api.list_messages(default_context(), _caller(), thread_id, _query()))


@app.get(f"{V1}/threads/<thread_id>/messages/<message_id>")
def retrieve_message(thread_id: str, message_id: str) -> Response[Any]:
    return answer(threads_api.retrieve_message(default_context(), _caller(), thread_id, message_id))


@app.post(f"{V1}/threads/<thread_id>/runs")
def create_run(thread_id: str) -> Response[Any]:
    return _run_answer(runs_api.create(default_context(), _caller(), thread_id, body_of(app)))


@app.get(f"{V1}/threads/<thread_id>/runs")
def list_runs(thread_id: str) -> Response[Any]:
    return answer(runs_api.list_page(default_context(), _caller(), thread_id, _query()))


@app.get(f"{V1}/threads/<thread_id>/runs/<run_id>")
def retrieve_run(thread_id: str, run_id: str) -> Response[Any]:
    return answer(runs_api.retrieve(default_context(), _caller(), thread_id, run_id))


@app.post(f"{V1}/threads/<thread_id>/runs/<run_id>/cancel")
def cancel_run(thread_id: str, run_id: str) -> Response[Any]:
    return answer(runs_api.cancel(default_context(), _caller(), thread_id, run_id))


@app.post(f"{V1}/threads/<thread_id>/runs/<run_id>/submit_tool_outputs")
def submit_tool_outputs(thread_id: str, run_id: str) -> Response[Any]:
    return _run_answer(
        runs_api.submit_tool_outputs(default_context(), _caller(), thread_id, run_id, body_of(app))
    )


@app.get(f"{V1}/threads/<thread_id>/runs/<run_id>/steps")
def list_run_steps(thread_id: str, run_id: str) -> Response[Any]:
    return answer(runs_api.list_steps(default_context(), _caller(), thread_id, run_id, _query()))


@app.get(f"{V1}/threads/<thread_id>/runs/<run_id>/steps/<step_id>")
def retrieve_run_step(thread_id: str, run_id: str, step_id: str) -> Response[Any]:
    return answer(runs_api.retrieve_step(default_context(), _caller(), thread_id, run_id, step_id))


@app.post(f"{V1}/files")
def create_file() -> Response[Any]:
    content_type = app.current_event.headers.get("content-type", "")
    return answer(files_api.create(default_context(), _caller(), content_type, raw_body(app)))


@app.get(f"{V1}/files")
def list_files() -> Response[Any]:
    return answer(files_api.list_page(default_context(), _caller(), _query()))


@app.get(f"{V1}/files/<file_id>")
def retrieve_file(file_id: str) -> Response[Any]:
    return answer(files_api.retrieve(default_context(), _caller(), file_id))


@app.delete(f"{V1}/files/<file_id>")
def delete_file(file_id: str) -> Response[Any]:
    return answer(files_api.delete(default_context(), _caller(), file_id))


@app.get(f"{V1}/files/<file_id>/content")
def file_content(file_id: str) -> Response[Any]:
    data = files_api.content(default_context(), _caller(), file_id)
    # As the Files API answers: bytes, whatever the file (the document says application/octet-stream).
    return Response(status_code=200, content_type="application/octet-stream", body=data)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
