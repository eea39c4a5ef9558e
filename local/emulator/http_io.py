"""The emulator's HTTP input and output: reading a request (its JSON body, a multipart form's nested object, an
integer query argument) in OpenAI's error words, and the answers the app (local/emulator/app.py) sends: JSON,
and the kinds it sends specially (slow, streamed, cut short); and what the exchange log keeps of each."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from local.emulator.errors import invalid_request
from local.emulator.exchange import Exchange

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def json_body(request: Request, default: Any = None) -> Any:
    raw = request.get_data()
    if not raw.strip() and default is not None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid_request(_NOT_JSON) from None


def form_object(request: Request, name: str) -> dict[str, str] | None:
    """A nested multipart field as the SDK sends it: ``name[key]=value`` parts."""
    prefix = f"{name}["
    found = {key[len(prefix) : -1]: value for key, value in request.form.items() if key.startswith(prefix)}
    return found or None


def int_arg(request: Request, name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid_request(f"Invalid value for '{name}': expected an integer.", param=name) from None


class SlowResponse(Response):
    """An answer the model takes ``delay_seconds`` to give (sent after that, outside the lock)."""

    delay_seconds: float = 0.0

    @classmethod
    def of(cls, body: Any, delay_seconds: float, *, status: int = 200) -> SlowResponse:
        response = cls(json.dumps(body), status=status, mimetype="application/json")
        response.delay_seconds = delay_seconds
        return response


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=Headers(headers or {}), mimetype="application/json"
    )


class StreamedResponse(Response):
    """Server-sent events, written as they come (outside the lock)."""


def paced(chunks: list[bytes], pause: float, wait: Callable[[float], bool]) -> Iterator[bytes]:
    """The chunks spread over the model's time; a reset (``wait`` answers True) ends them."""
    for index, chunk in enumerate(chunks):
        if index and pause and wait(pause):
            return
        yield chunk


class MalformedResponse(Response):
    """A scripted wire fault: the body is JSON cut short (see Plan.malformed_json)."""


def exchange_of(request: Request, response: Response, *, body: bytes | None = None) -> Exchange:
    """What the exchange log keeps of a request and its answer (``body``: what a stream sent)."""
    return Exchange(
        method=request.method,
        path=request.path,
        query={name: request.args.getlist(name) for name in request.args},
        request_headers={name.lower(): value for name, value in request.headers.items()},
        request_body=request.get_data(),
        status=response.status_code,
        response_headers={name.lower(): value for name, value in response.headers.items()},
        response_body=response.get_data() if body is None else body,
        fault=isinstance(response, MalformedResponse),
    )
