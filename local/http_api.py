"""The HTTP API on 127.0.0.1: what API Gateway does with the API's routes (threadrunner.http.gateway_routes).

The path is decoded as HTTP APIs decode it, the route chosen as API Gateway chooses it (404 without one), a
route behind the JWT authorizer checks the token as the authorizer does (401 without calling the Lambda), and
the request becomes a payload format 2.0 event for the api function, whose response is mapped back to HTTP.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from threadrunner.http.gateway_routes import ROUTES, Selected, select
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from local import event_stream
from local.auth import TokenRejectedError, verify_token
from local.lambdas import Invocation
from local.loopback import LoopbackServer

API_ID = "local"
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "application/x-www-form-urlencoded")

access_log = logging.getLogger("local.http_api.access")
EXAMPLES_PREFIX = "/examples/"
EXAMPLE_NAME = re.compile(r"[a-z0-9_]+\.html")

Invoke = Callable[[str, dict[str, Any]], Invocation]  # (the route's function folder, event)
Verify = Callable[[str], dict[str, str]]


class PathRejectedError(ValueError):
    """A path HTTP APIs refuse with a 400 before any route: an escape that decodes to no character."""


def gateway_path(raw_path: str) -> str:
    """The path as an HTTP API hands it to the function, in ``rawPath``, ``requestContext.http.path`` and the
    path parameters: percent-decoded (UTF-8), cut at a ``?`` that decoding made, and decoded once more, so
    that ``%2520`` is a space and a ``%25`` that then starts no escape is refused. This is what live captures
    of HTTP APIs show (REST APIs, ALB and function URLs keep the path as sent); the API decodes nothing again.
    ``raw_path`` is the WSGI ``RAW_URI``'s path: the request's bytes as latin-1."""
    once = _percent_decoded(raw_path.encode("latin-1")).split("?", 1)[0]
    return _percent_decoded(once.encode())


def _percent_decoded(path: bytes) -> str:
    if _STRAY_PERCENT.search(path):
        raise PathRejectedError(f"{path!r} has a % that starts no escape")
    decoded = _ESCAPE.sub(lambda escape: bytes([int(escape.group(1), 16)]), path)
    try:
        return decoded.decode()
    except UnicodeDecodeError as error:
        raise PathRejectedError(f"{path!r} does not decode to UTF-8") from error


def build_event(
    request: Request,
    claims: dict[str, str] | None,
    *,
    route: Selected,
    path: str,
    account_id: str,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The event API Gateway sends for this request on ``route`` (payload format version 2.0); ``path`` is the
    decoded path, ``claims`` those of the token when the route is behind the authorizer."""
    raw_query = request.query_string.decode("latin-1")
    body = request.get_data()
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        if name.lower() != "cookie":  # cookies get their own field
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-for", request.remote_addr or "")
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-port", str(request.environ.get("SERVER_PORT", "")))

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route.key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    cookies = [part.strip() for value in request.headers.getlist("cookie") for part in value.split(";")]
    if any(cookies):
        event["cookies"] = [cookie for cookie in cookies if cookie]
    event["headers"] = headers
    if raw_query:
        event["queryStringParameters"] = _joined(parse_qsl(raw_query, keep_blank_values=True))
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": API_ID,
        **({"authorizer": {"jwt": {"claims": claims, "scopes": None}}} if claims is not None else {}),
        "domainName": request.host,
        "http": {
            "method": request.method,
            "path": path,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "sourceIp": request.remote_addr or "",
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route.key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if route.path_parameters:
        event["pathParameters"] = route.path_parameters
    if body:
        is_text = any(kind in (request.mimetype or "") for kind in _TEXT_TYPES) and _is_utf8(body)
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
        event["isBase64Encoded"] = not is_text
    else:
        event["isBase64Encoded"] = False
    return event


def to_response(invocation: Invocation) -> Response:
    """Map the function's result back to HTTP as API Gateway does for payload format 2.0."""
    if invocation.error is not None:
        return _message(500, "Internal Server Error")
    result = invocation.payload
    if not isinstance(result, dict) or "statusCode" not in result:
        # No status code: API Gateway sends the result itself as a 200 JSON body.
        return Response(json.dumps(result), status=200, content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, status=int(result["statusCode"]))
    del response.headers["Content-Type"]  # only what the function sets
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


class HttpApi(LoopbackServer):
    """The API on loopback; ``invoke`` calls the route's function (the api Lambda, or the webhook's)."""

    def __init__(
        self,
        invoke: Invoke,
        *,
        account_id: str,
        port: int = 0,
        verify: Verify = verify_token,
        local_routes: Mapping[str, Callable[[], Invocation]] | None = None,
        examples_dir: Path | None = None,
    ) -> None:
        super().__init__(self._app, name="local-http-api", port=port, request_handler=_AccessLogHandler)
        self._invoke = invoke
        # POST <path> -> a local-only action (not part of the deployed API, no token: loopback only).
        self._local_routes = dict(local_routes or {})
        # GET /examples/<name>.html: the browser examples, served from here so that they call the API from
        # its own origin (the deployed API's CORS settings are API Gateway's; the local stack has none).
        self._examples_dir = examples_dir
        self._verify = verify
        self._account_id = account_id

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if self._examples_dir is not None and request.path.startswith(EXAMPLES_PREFIX):
            return self._example(request)
        if request.path in self._local_routes:
            if request.method != "POST":
                return _message(405, "Method Not Allowed")
            outcome = self._local_routes[request.path]()
            if outcome.error is not None:
                return Response(outcome.error.to_payload(), status=500, content_type="application/json")
            return Response(json.dumps(outcome.payload), status=200, content_type="application/json")
        request_id = base64.b64encode(uuid.uuid4().bytes[:10]).decode()
        response = self._route(request, request_id)
        response.headers["apigw-requestid"] = request_id
        return response

    def _example(self, request: Request) -> Response:
        name = request.path.removeprefix(EXAMPLES_PREFIX)
        assert self._examples_dir is not None
        page = self._examples_dir / name
        if request.method != "GET" or not EXAMPLE_NAME.fullmatch(name) or not page.is_file():
            return _message(404, "Not Found")
        return Response(page.read_bytes(), status=200, mimetype="text/html")

    def _route(self, request: Request, request_id: str) -> Response:
        try:
            path = gateway_path(request.environ.get("RAW_URI", request.full_path).split("?", 1)[0])
        except PathRejectedError:
            return _message(400, "Bad Request")
        route = select(ROUTES, request.method, path)
        if route is None:
            return _message(404, "Not Found")
        claims = None
        if route.route.authorized:
            try:
                claims = self._verify(_bearer_token(request))
            except TokenRejectedError as error:
                response = _message(401, "Unauthorized")
                response.headers["www-authenticate"] = (
                    f'Bearer error="invalid_token" error_description="{error}"'
                )
                return response
        event = build_event(
            request,
            claims,
            route=route,
            path=path,
            account_id=self._account_id,
            request_id=request_id,
            now=_now(),
        )
        invoke = functools.partial(self._invoke, route.route.function)
        if event_stream.wants_stream(request, path):  # Server-Sent Events: the local stack only
            return event_stream.stream_response(request, event, invoke, to_response)
        return to_response(invoke(event))


class _AccessLogHandler(WSGIRequestHandler):
    """Access lines go to ``access_log`` (silent unless configured), not to werkzeug's stderr handler."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.ERROR if type == "error" else logging.INFO
        access_log.log(level, "%s " + message, self.address_string(), *args)


def _bearer_token(request: Request) -> str:
    """The token, alone or prefixed with ``Bearer `` (the authorizer takes both); anything else in the header
    is handed over as it is and fails verification, as it does in API Gateway."""
    value = request.headers.get("authorization", "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer":
        value = token.strip()
    if not value:
        raise TokenRejectedError("no token in the Authorization header")
    return value


def _message(status: int, message: str) -> Response:
    return Response(json.dumps({"message": message}), status=status, content_type="application/json")


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(UTC)
