"""Upstream retries, one policy for every engine: an httpx transport under the openai SDK (whose own retries
are off, since it would also repeat creates after a lost connection and wait on ``insufficient_quota``).

A request that creates nothing (GET, HEAD, DELETE, a cancel) is retried after 429 rate limits (waiting what
``retry-after-ms`` / ``retry-after`` asks, up to a bound), 5xx answers, timeouts and lost connections.

Any other request may create something (a response, a run, tool outputs handed over: a model turn), and a
create is sent again only when the upstream provably did not take it: a connection that was never made
(refused, no route, the connect timed out: nothing was sent) or a 429 rate limit (a refusal before
acceptance). A 5xx proves nothing: a proxy's 502 or 504 may follow a create the upstream accepted, and the
upstream's own 500/503 may too. Those, timeouts and connections lost mid-request go back to the caller, for
whom the outcome is unknown (engines/errors.py: UpstreamOutcomeUnknown). The one exception is a chat
completion, which leaves nothing upstream: it is also asked again after a 5xx. Never retried: 429
``insufficient_quota`` and every other 4xx.

Waits: the upstream's hint when it gives one (a hint beyond ``max_retry_after_seconds`` is not worth
waiting in a Lambda: the error goes on to the workflow and the fallback), else exponential backoff with
full jitter, capped; all waits of one request together stay within ``budget_seconds``. One call therefore
lasts at most ``max_attempts`` client timeouts plus ``budget_seconds``, which must stay below the Lambda's
timeout (tests/infra/test_timing.py).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2 as httpx  # the HTTP client the openai SDK is built on

from threadrunner import clock

_REPEATABLE_METHODS = frozenset({"GET", "HEAD", "DELETE"})
# Raised before the request left: no connection was made (refused, unreachable, TLS failed, connect timed out)
# or none was free in the pool. Anything later (a write, a read, a timeout while waiting for the answer) may
# follow a request the upstream received.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults as threadrunner.settings.UpstreamSettings' (where the engines take theirs from)."""

    max_attempts: int = 2
    base_seconds: float = 0.5
    max_backoff_seconds: float = 4.0
    max_retry_after_seconds: float = 10.0
    budget_seconds: float = 10.0

    def backoff(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """Full jitter: anywhere between 0 and base * 2^(attempt-1), capped."""
        return draw() * min(self.max_backoff_seconds, self.base_seconds * 2 ** (attempt - 1))


class RetryingTransport(httpx.BaseTransport):
    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._sleep = sleep
        self._draw = draw

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        repeatable = creates_nothing(request)
        answer_repeatable = repeatable or keeps_nothing(request)
        waited = 0.0
        attempt = 1
        while True:
            try:
                response = self._inner.handle_request(request)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                again = repeatable or never_sent(error)
                wait = self._policy.backoff(attempt, self._draw) if again else None
                if not self._may_wait(wait, attempt, waited):
                    raise
            else:
                wait = self._wait_after(response, attempt, answer_repeatable)
                if not self._may_wait(wait, attempt, waited):
                    return response
                response.close()
            assert wait is not None
            self._sleep(wait)
            waited += wait
            attempt += 1

    def close(self) -> None:
        self._inner.close()

    def _may_wait(self, wait: float | None, attempt: int, waited: float) -> bool:
        policy = self._policy
        return wait is not None and attempt < policy.max_attempts and waited + wait <= policy.budget_seconds

    def _wait_after(self, response: httpx.Response, attempt: int, repeatable: bool) -> float | None:
        """How long to wait before trying again, or None: not worth another attempt, or not safe (a 5xx
        answering a create may follow its acceptance)."""
        if response.status_code >= 500:
            return self._policy.backoff(attempt, self._draw) if repeatable else None
        if response.status_code != 429:
            return None
        response.read()  # small JSON: the SDK reads the cached body afterwards
        if error_code(response) == "insufficient_quota":
            return None
        hinted = retry_after_seconds(response.headers)
        if hinted is None:
            return self._policy.backoff(attempt, self._draw)
        return hinted if hinted <= self._policy.max_retry_after_seconds else None


def creates_nothing(request: httpx.Request) -> bool:
    """Repeating it cannot start the model twice, whatever became of the first attempt."""
    return request.method in _REPEATABLE_METHODS or (
        request.method == "POST" and request.url.path.endswith("/cancel")
    )


def keeps_nothing(request: httpx.Request) -> bool:
    """A chat completion: the upstream keeps nothing of it and only the answer we store counts, so one
    answered 5xx may be asked again (a second completion costs tokens, never a second answer). Not after a
    timeout: the model that was too slow once would most likely be too slow again, at the same price."""
    return request.method == "POST" and request.url.path.endswith("/chat/completions")


def never_sent(error: BaseException) -> bool:
    """The request never left (see _NOTHING_SENT): the upstream provably did not take it."""
    return isinstance(error, _NOTHING_SENT)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``retry-after-ms`` (OpenAI's, precise), else ``retry-after`` in seconds or as an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - clock.now()).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def error_code(response: httpx.Response) -> str | None:
    """``error.code`` of an OpenAI error body."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None
