"""What the client raises: every error is a ``ThreadrunnerError`` carrying the API's ``code``, ``message`` and
``field`` (the body of every error answer, ``ErrorOut``) and the HTTP ``status``; a subclass per status a
caller handles differently. Errors that are not an API answer (a lost connection, a wait that ran out, S3
refusing an upload) have ``status`` None."""

from __future__ import annotations

from typing import Any


class ThreadrunnerError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        status: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" ({field})" if field else ""))
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.body = body or {}  # the whole answer: e.g. active_run_id, or a budget's limit and resets_at


class BadRequestError(ThreadrunnerError):
    """400: a path the gateway could not read."""


class AuthenticationError(ThreadrunnerError):
    """401: no token, or one the API does not accept."""


class PermissionDeniedError(ThreadrunnerError):
    """403: an operator's route."""


class NotFoundError(ThreadrunnerError):
    """404: no such thread, run or file for this caller (another user's answers 404 too)."""


class ConflictError(ThreadrunnerError):
    """409: e.g. the thread has an active run (``active_run_id``), or the run waits for nothing."""

    @property
    def active_run_id(self) -> str | None:
        value = self.body.get("active_run_id")
        return str(value) if value else None


class InvalidRequestError(ThreadrunnerError):
    """422 (and 413, 415): bad input; ``field`` names it (``message``, ``tool_outputs.0.tool_call_id``)."""


class RateLimitError(ThreadrunnerError):
    """429: too many runs per minute, a daily budget (``code`` budget_exceeded) or the gateway's throttling."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ThreadrunnerError):
    """5xx: the service could not answer (503: e.g. a secret not set yet)."""


class ConnectionLostError(ThreadrunnerError):
    """The API could not be reached or the connection broke (``code`` connection_failed); the events reader
    reconnects by itself, and raises this only after failing again and again."""


class WaitTimeoutError(ThreadrunnerError):
    """``runs.wait`` or an upload's staging took longer than the caller's ``timeout``: ``code`` wait_timeout."""


class StorageError(ThreadrunnerError):
    """S3 refused a presigned POST or GET: ``code`` is S3's (EntityTooLarge, AccessDenied, ...)."""


class FileRejectedError(ThreadrunnerError):
    """Staging failed the uploaded file: ``code`` file_failed, ``message`` the file's reason."""


_BY_STATUS: dict[int, type[ThreadrunnerError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def api_error(status: int, body: Any, headers: dict[str, str]) -> ThreadrunnerError:
    """The exception for an error answer. API Gateway's own 401s and 429s carry only ``message``; anything
    that is not JSON (a proxy's page) keeps its first characters as the message."""
    answer = body if isinstance(body, dict) else {}
    code = str(answer.get("code") or f"http_{status}")
    message = str(answer.get("message") or (body if isinstance(body, str) else "")[:500] or f"HTTP {status}")
    field = answer.get("field")
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ThreadrunnerError)
    if kind is RateLimitError:
        return RateLimitError(
            code,
            message,
            field=field,
            status=status,
            body=answer,
            retry_after=_seconds(headers.get("retry-after")),
        )
    return kind(code, message, field=field, status=status, body=answer)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to leave to the caller's own backoff
