"""Errors in OpenAI's wire shape: ``{"error": {"message", "type", "param", "code"}}`` plus a status."""

from __future__ import annotations

import math
from typing import Any

from local.emulator.script import HttpErrorPlan


class ApiError(Exception):
    """Raised anywhere in the emulator; the server turns it into the HTTP answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # the wire field's name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(404, message, param=param)


def unauthorized(message: str, *, code: str | None = None) -> ApiError:
    return ApiError(401, message, code=code)


# What the real service says for the statuses tests script most often.
_DEFAULTS: dict[tuple[int, str | None], tuple[str, str]] = {
    (429, "rate_limit_exceeded"): ("requests", "Rate limit reached for requests. Please try again shortly."),
    (429, "insufficient_quota"): (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    (500, None): ("server_error", "The server had an error while processing your request. Sorry about that!"),
    (503, None): ("server_error", "The engine is currently overloaded, please try again later."),
    (504, None): ("server_error", "Gateway timeout: the upstream did not answer in time."),
}


def scripted_http_error(plan: HttpErrorPlan) -> ApiError:
    error_type, default_message = _DEFAULTS.get(
        (plan.status, plan.code),
        ("server_error" if plan.status >= 500 else "invalid_request_error", f"Emulated HTTP {plan.status}."),
    )
    headers = {}
    if plan.status == 429 and plan.code != "insufficient_quota":
        headers = {
            "retry-after": str(max(1, math.ceil(plan.retry_after_ms / 1000))),
            "retry-after-ms": str(plan.retry_after_ms),
        }
    return ApiError(
        plan.status, plan.message or default_message, type=error_type, code=plan.code, headers=headers
    )
