"""Server-Sent Events for a run's events, on the local stack only: ``GET /v1/runs/{id}/events?stream=true``.

Deployed, browsers get live events from the run's AppSync Events channel; locally the HTTP API serves the same
stream as SSE so that the CLI and the browser example work offline. The stream is a loop over the API's own
long poll (``GET /v1/runs/{id}/events?after=N&wait=S``, through the API Lambda, so the token, the 404 rules and
the event log are the deployed ones): each event is one frame, ``id: <seq>``, ``event: <type>``, ``data: <the
event as JSON>``; a reconnecting client sends ``Last-Event-ID`` (or ``after``) and resumes after it. The stream
ends after the run's last event (run.completed, run.failed, run.cancelled, run.timed_out)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.wrappers import Request, Response

from local.lambdas import Invocation

EVENTS_PATH = re.compile(r"^/v1/runs/(?P<run_id>[^/]+)/events$")
ENDING_TYPES = frozenset({"run.completed", "run.failed", "run.cancelled", "run.timed_out"})
POLL_WAIT_SECONDS = 5  # short: a stopping stack never waits long for a stream's poll
# Comment frames while nothing happens: proxies and browsers keep the connection open.
KEEP_ALIVE = b": keep-alive\n\n"

Invoke = Callable[[dict[str, Any]], Invocation]


def wants_stream(request: Request, path: str) -> bool:
    return (
        request.method == "GET"
        and EVENTS_PATH.match(path) is not None
        and request.args.get("stream", "").lower() in ("true", "1")
    )


def stream_response(
    request: Request,
    event: dict[str, Any],
    invoke: Invoke,
    answer: Callable[[Invocation], Response],
) -> Response:
    """The SSE answer for ``event`` (the API Gateway event of the streaming request), or the API's own
    answer (``answer`` maps it to HTTP) when it refuses (404, 422) before any event is sent."""
    try:
        after = int(request.headers.get("last-event-id") or request.args.get("after") or 0)
    except ValueError:
        after = -1  # the API refuses it, naming `after`
    first = _page(invoke, event, after, wait=0)
    if first is None or "events" not in first:
        return answer(invoke(_with_query(event, after=after, wait=0)))
    return Response(
        _frames(invoke, event, first),
        status=200,
        mimetype="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        direct_passthrough=True,
    )


def _frames(invoke: Invoke, event: dict[str, Any], page: dict[str, Any]) -> Iterator[bytes]:
    run_path = EVENTS_PATH.match(event["rawPath"])
    assert run_path is not None
    while True:
        for item in page["events"]:
            yield _frame(item)
            if item["type"] in ENDING_TYPES:
                return
        if not page["events"]:
            yield KEEP_ALIVE
            if _run_ended(invoke, event, run_path.group("run_id")):
                # Its end is written just before its last event: one more read (it waits for that event).
                last = _page(invoke, event, int(page["next"]), wait=POLL_WAIT_SECONDS)
                yield from (_frame(item) for item in (last["events"] if last else []))
                return
        next_page = _page(invoke, event, int(page["next"]), wait=POLL_WAIT_SECONDS)
        if next_page is None:  # the run was deleted, or the API refused: the stream ends
            return
        page = next_page


def _frame(item: dict[str, Any]) -> bytes:
    return f"id: {item['seq']}\nevent: {item['type']}\ndata: {json.dumps(item)}\n\n".encode()


def _page(invoke: Invoke, event: dict[str, Any], after: int, *, wait: int) -> dict[str, Any] | None:
    answer = invoke(_with_query(event, after=after, wait=wait))
    payload = answer.payload if answer.error is None else None
    if not isinstance(payload, dict) or payload.get("statusCode") != 200:
        return None
    body: dict[str, Any] = json.loads(payload.get("body") or "{}")
    return body


def _run_ended(invoke: Invoke, event: dict[str, Any], run_id: str) -> bool:
    """An ended run whose last event was read before this stream began: nothing more will come."""
    run_event = {**event, "rawPath": f"/v1/runs/{run_id}", "rawQueryString": ""}
    run_event.pop("queryStringParameters", None)
    run_event["routeKey"] = event["routeKey"]
    run_event["requestContext"] = {
        **event["requestContext"],
        "http": {**event["requestContext"]["http"], "path": f"/v1/runs/{run_id}"},
    }
    run_event["pathParameters"] = {"proxy": f"runs/{run_id}"}
    answer = invoke(run_event)
    payload = answer.payload if answer.error is None else None
    if not isinstance(payload, dict) or payload.get("statusCode") != 200:
        return True
    status = json.loads(payload.get("body") or "{}").get("status")
    return status in ("completed", "failed", "cancelled", "timed_out")


def _with_query(event: dict[str, Any], **values: int) -> dict[str, Any]:
    query = {
        name: value
        for name, value in parse_qsl(event.get("rawQueryString", ""), keep_blank_values=True)
        if name not in ("stream", "after", "wait")
    }
    query.update({name: str(value) for name, value in values.items()})
    return {**event, "rawQueryString": urlencode(query), "queryStringParameters": query}
