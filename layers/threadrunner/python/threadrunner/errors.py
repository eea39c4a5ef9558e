"""Domain exceptions. The API maps them to HTTP once (threadrunner.http.resolver); the workflow sees their class
names as error names (``Catch``/``Retry`` in run.asl.json), so the names are part of the contract."""

from __future__ import annotations


class ThreadrunnerError(Exception):
    """Base class: a failure we understand and can name."""

    code = "internal_error"


class NotFoundError(ThreadrunnerError):
    """The thing does not exist, or belongs to someone else (never say which)."""

    code = "not_found"


class ConflictError(ThreadrunnerError):
    code = "conflict"

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.details = details


class InvalidRequestError(ThreadrunnerError):
    code = "invalid_request"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceededError(InvalidRequestError):
    """A limit of the caller's (storage quota): a 422 naming the field that would break it."""

    code = "quota_exceeded"


class FileNotInlinable(InvalidRequestError):
    """The chat engine cannot put this file's text in the message (not text, too large, not UTF-8, gone).
    A 422 naming ``file_ids.<i>`` at the API; the workflow error of a run on (or falling back to) chat."""

    code = "file_not_inlinable"


class RateLimitExceededError(ThreadrunnerError):
    """The caller is over a per-user rate limit (runs per minute): a 429 saying when to try again."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailableError(ThreadrunnerError):
    code = "service_unavailable"


# Upstream (model provider) failures. Their names are workflow error names.
class UpstreamError(ThreadrunnerError):
    """The upstream refused the request for a reason retrying will not fix."""

    code = "upstream_error"


class UpstreamRateLimited(UpstreamError):
    """429 rate limit: retry after a pause."""

    code = "rate_limited"


class UpstreamQuotaExceeded(UpstreamError):
    """429 insufficient_quota: never retry, a person has to act."""

    code = "insufficient_quota"


class UpstreamUnavailable(UpstreamError):
    """Timeouts, connection errors and 5xx: retry with backoff."""

    code = "upstream_unavailable"


class UpstreamOutcomeUnknown(UpstreamError):
    """A create call may or may not have reached the upstream; creating again could run the model twice."""

    code = "upstream_outcome_unknown"


class UpstreamRejected(UpstreamError):
    """400: the upstream refused this request as invalid; sending it again gives the same answer."""

    code = "upstream_rejected"


class UpstreamUnauthorized(UpstreamError):
    """401/403: the key is wrong, revoked or lacks access; a person has to act."""

    code = "upstream_unauthorized"


class UpstreamNotFound(UpstreamError):
    """404/410: the upstream has no such thing, or the endpoint itself is gone (an outage for fallback)."""

    code = "upstream_not_found"


class UpstreamThreadGone(UpstreamError):
    """The thread's conversation (or upstream thread) no longer exists upstream: the run fails, and the
    thread's next run starts a new one (our own message log keeps what was said)."""

    code = "upstream_thread_gone"


class UpstreamsFailed(UpstreamError):
    """The primary engine failed with an outage and the fallback engine failed too: both reasons."""

    code = "upstreams_failed"
