"""The compatible API's HTTP side: a JSON body read as the SDK sends it, every failure answered in OpenAI's
error envelope (threadrunner's own errors translated once, here), and a 404 for a route it does not have."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from threadrunner.budgets import BudgetExceededError
from threadrunner.compat.errors import CompatError
from threadrunner.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
    ServiceUnavailableError,
)
from threadrunner.http.callers import UnauthorizedError
from threadrunner.observability import logger


def answer(body: dict[str, Any], status: int = 200) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def body_of(app: APIGatewayHttpResolver) -> Any:
    """The request's JSON body ({} when there is none); one that is not UTF-8 JSON is a 400."""
    raw = raw_body(app)
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CompatError(400, "We could not parse the JSON body of your request.") from None


def raw_body(app: APIGatewayHttpResolver) -> bytes:
    """The request's body as bytes (API Gateway hands a binary one over in base64)."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode()


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    def envelope(failure: CompatError) -> Response[Any]:
        return answer(failure.body(), failure.status)

    @app.exception_handler(CompatError)
    def refused(failure: CompatError) -> Response[Any]:
        return envelope(failure)

    @app.exception_handler(InvalidRequestError)
    def invalid(failure: InvalidRequestError) -> Response[Any]:
        return envelope(CompatError(400, str(failure), param=_param(failure.field)))

    @app.exception_handler(NotFoundError)
    def missing(failure: NotFoundError) -> Response[Any]:
        return envelope(CompatError(404, str(failure)))

    @app.exception_handler(ConflictError)
    def conflict(failure: ConflictError) -> Response[Any]:
        return envelope(CompatError(400, str(failure)))  # e.g. a run while another is active: the API's 400

    @app.exception_handler(UnauthorizedError)
    def unauthorized(failure: UnauthorizedError) -> Response[Any]:
        return envelope(
            CompatError(401, str(failure), error_type="invalid_request_error", code="invalid_api_key")
        )

    @app.exception_handler(BudgetExceededError)
    def over_budget(failure: BudgetExceededError) -> Response[Any]:
        return envelope(
            CompatError(429, str(failure), error_type="insufficient_quota", code="insufficient_quota")
        )

    @app.exception_handler(RateLimitExceededError)
    def rate_limited(failure: RateLimitExceededError) -> Response[Any]:
        response = envelope(CompatError(429, str(failure), error_type="requests", code="rate_limit_exceeded"))
        response.headers["Retry-After"] = str(failure.retry_after_seconds)
        return response

    @app.exception_handler(ServiceUnavailableError)
    def unavailable(failure: ServiceUnavailableError) -> Response[Any]:
        return envelope(CompatError(503, str(failure), error_type="server_error"))

    @app.not_found
    def no_route(_: Exception) -> Response[Any]:
        event = app.current_event
        return envelope(CompatError(404, f"Invalid URL ({event.http_method} {event.path})"))

    @app.exception_handler(Exception)
    def internal(_: Exception) -> Response[Any]:
        logger.exception("unhandled error")  # the stack trace goes to the log, never to the caller
        return envelope(
            CompatError(
                500, "The server had an error while processing your request.", error_type="server_error"
            )
        )

    return app


def _param(field: str | None) -> str | None:
    """threadrunner's field path (``tool_outputs.0.tool_call_id``) as OpenAI writes it
    (``tool_outputs[0].tool_call_id``)."""
    if not field:
        return None
    parts = field.split(".")
    written = parts[0]
    for part in parts[1:]:
        written += f"[{part}]" if part.isdigit() else f".{part}"
    return written
