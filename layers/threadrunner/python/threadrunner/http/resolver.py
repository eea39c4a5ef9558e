"""The API's resolver: Powertools' APIGatewayHttpResolver with validation, reading bodies as bounded JSON
(json_bodies), and every domain error mapped to HTTP here, once. A request no route takes is a 404 for a path
the API does not have, a 405 naming the path's methods in ``Allow`` for a method it lacks, and OPTIONS answers
those methods (204) without a token: what the path allows is no secret, and a browser's CORS preflight has none.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel

from threadrunner import clock
from threadrunner.budgets import BudgetExceededError
from threadrunner.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
    ServiceUnavailableError,
)
from threadrunner.http.callers import ForbiddenError, UnauthorizedError
from threadrunner.http.json_bodies import UnsupportedMediaTypeError, read_json, refused_media_type
from threadrunner.http.route_table import RouteTable
from threadrunner.models.api import BudgetExceededOut, ErrorOut
from threadrunner.observability import logger


def json_response(status: int, body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    # A dict, not JSON text: with validation on, Powertools checks it against the route's response model.
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json", exclude_none=isinstance(body, ErrorOut)),
        headers=headers,
    )


@cache
def route_table(app: APIGatewayHttpResolver) -> RouteTable:
    """The app's paths and their methods, from its own document (built once, after the routes are declared)."""
    return RouteTable(app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True))


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=read_json)
    app.use([_json_bodies_only])
    _map_errors(app)
    return app


def _json_bodies_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """A body the route reads is JSON: a form that happened to validate is refused too (415)."""
    refusal = _not_json(app)
    if refusal is not None:
        raise refusal
    return next_middleware(app)


def _not_json(app: APIGatewayHttpResolver) -> UnsupportedMediaTypeError | None:
    """The refusal of a body this route reads that is in another format than JSON, if it is."""
    event = app.current_event
    if not route_table(app).reads_body(event.http_method, event.path):
        return None
    media_type = refused_media_type(event.headers, event.body)
    return None if media_type is None else UnsupportedMediaTypeError(media_type)


def _map_errors(app: APIGatewayHttpResolver) -> None:
    def error(status: int, failure: Exception, **details: Any) -> Response:
        code = getattr(failure, "code", "internal_error")
        return json_response(status, ErrorOut(code=code, message=str(failure), **details))

    @app.exception_handler(RequestValidationError)
    def invalid_request(failure: RequestValidationError) -> Response:
        problems = failure.errors()
        refusal = _not_json(app)  # a form read as one: the format is the fault, not the fields
        if refusal is not None and any(
            tuple(problem.get("loc", ()))[:1] == ("body",) for problem in problems
        ):
            return error(415, refusal)
        first = problems[0] if problems else {}
        where = first.get("loc", ())
        location = [str(part) for part in where if part not in ("body", "path", "query", "header")]
        field = ".".join(location) or None
        if field and where and where[0] == "header":  # as a person writes it: Idempotency-Key
            field = "-".join(word.capitalize() for word in field.split("-"))
        message = (
            f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid request"))
        )
        return json_response(422, ErrorOut(code="invalid_request", message=message, field=field))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_content_type(_: RequestUnsupportedContentType) -> Response:
        media_type = app.current_event.headers.get("content-type", "")
        return error(415, _not_json(app) or UnsupportedMediaTypeError(media_type))

    @app.exception_handler(UnsupportedMediaTypeError)
    def not_json(failure: UnsupportedMediaTypeError) -> Response:
        return error(415, failure)

    @app.exception_handler(UnicodeDecodeError)
    def undecodable_body(failure: UnicodeDecodeError) -> Response:
        if not app.current_event.is_base64_encoded:
            return internal(failure)  # not the request's body: a bug of ours
        # API Gateway hands a body that is not UTF-8 over as base64; JSON must be UTF-8 (RFC 8259).
        return json_response(
            422, ErrorOut(code="invalid_request", message="body: not UTF-8 JSON", field="body")
        )

    @app.exception_handler(InvalidRequestError)
    def invalid_value(failure: InvalidRequestError) -> Response:
        return error(422, failure, field=failure.field)

    @app.exception_handler(NotFoundError)
    def not_found(failure: NotFoundError) -> Response:
        return error(404, failure)

    @app.exception_handler(ConflictError)
    def conflict(failure: ConflictError) -> Response:
        return error(409, failure, **failure.details)

    @app.exception_handler(UnauthorizedError)
    def unauthorized(failure: UnauthorizedError) -> Response:
        return error(401, failure)

    @app.exception_handler(ForbiddenError)
    def forbidden(failure: ForbiddenError) -> Response:
        return error(403, failure)

    @app.exception_handler(BudgetExceededError)
    def over_budget(failure: BudgetExceededError) -> Response:
        body = BudgetExceededOut(
            code=failure.code,
            message=str(failure),
            budget=failure.budget,
            limit=failure.limit,
            used=failure.used,
            resets_at=failure.resets_at,
        )
        return json_response(
            429, body, {"Retry-After": str(clock.retry_after(failure.resets_at, clock.now()))}
        )

    @app.exception_handler(RateLimitExceededError)
    def rate_limited(failure: RateLimitExceededError) -> Response:
        response = error(429, failure)
        response.headers["Retry-After"] = str(failure.retry_after_seconds)
        return response

    @app.exception_handler(ServiceUnavailableError)
    def unavailable(failure: ServiceUnavailableError) -> Response:
        return error(503, failure)

    @app.not_found
    def no_route(_: Exception) -> Response:
        event = app.current_event
        method = event.http_method.upper()
        path = route_table(app).find(event.path)
        if path is None:
            return json_response(404, ErrorOut(code="not_found", message="no such route"))
        if method in path.methods:  # the route exists: Powertools did not route one of its parameters
            parameter = path.unroutable_parameter(event.path) or "path"
            message = f"{parameter}: holds a character a path parameter cannot (see its pattern)"
            return json_response(422, ErrorOut(code="invalid_request", message=message, field=parameter))
        if method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": path.allow})
        message = f"{path.template} takes {path.allow}, not {method}"
        return json_response(405, ErrorOut(code="method_not_allowed", message=message), {"Allow": path.allow})

    @app.exception_handler(Exception)
    def internal(_: Exception) -> Response:
        refusal = _not_json(app)
        if refusal is not None:  # Powertools failed reading a form (multipart without a boundary, say)
            return error(415, refusal)
        logger.exception("unhandled error")  # the stack trace goes to the log, never to the caller
        return json_response(500, ErrorOut(code="internal_error", message="internal error"))
