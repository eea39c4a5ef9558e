"""What each route may answer, for the OpenAPI document (tests/e2e/test_fuzz.py holds the API to it).

Every route may answer 401 (API Gateway's authorizer, or a token whose subject is no user id), 422 (bad input)
and 429 (API Gateway's throttling, besides our own limits); a route that reads a body also 415 (not JSON).
Errors share one body (ErrorOut); 401 and 429 may come from API Gateway itself, with only a message.
"""

from __future__ import annotations

from typing import Any

from threadrunner.models.api import ErrorOut, GatewayErrorOut

ERRORS: dict[int, str] = {
    401: "no valid token (API Gateway refuses a missing or invalid one itself), or its subject is not a user id "
    "this API takes (1 to 256 characters)",
    403: "this route is for operators only",
    404: "no such resource of the caller's (another user's is not found either)",
    409: "a conflict: the thread has an active run, a file is not ready, or a request with this "
    "Idempotency-Key is still in progress",
    415: "the body is not application/json",
    422: "bad input: the body names the field (or the Idempotency-Key header, or body when it is not JSON "
    "the API reads)",
    429: "too many requests: API Gateway's throttling, or a limit of the caller's (runs per minute, a daily "
    "budget); Retry-After says when to retry",
    503: "a service behind the API is unavailable; try again",
}
ALWAYS = (401, 422, 429)
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true: the first answer to this Idempotency-Key, repeated",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def answers(
    success: dict[int, str],
    *errors: int,
    empty: tuple[int, ...] = (),
    replay: bool = False,
    body: bool = False,
) -> Any:
    """``responses=`` for a route: its successes (bodies from its return type, or none for ``empty``), then
    its errors; ``body``: the route reads a JSON body."""
    documented: dict[int, Any] = {}
    for status, description in success.items():
        documented[status] = {"description": description}
        if status in empty:
            documented[status]["content"] = {}
        elif replay:
            documented[status]["headers"] = _REPLAYED
    for status in sorted({*ALWAYS, *errors, *((415,) if body else ())}):
        model = GatewayErrorOut if status in (401, 429) else ErrorOut
        documented[status] = {
            "description": ERRORS[status],
            "content": {"application/json": {"model": model}},
        }
        if status == 429:
            documented[status]["headers"] = _RETRY_AFTER
    return documented
