"""Upstream retries (engines/retry.py): what is retried, how long each wait is, and that waits stay bounded.
The transport under test sits on a scripted inner transport; sleeps are recorded, never slept."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import httpx2 as httpx
import pytest
from threadrunner import clock
from threadrunner.engines.retry import RetryingTransport, RetryPolicy, retry_after_seconds

POLICY = RetryPolicy(
    max_attempts=4,
    base_seconds=1.0,
    max_backoff_seconds=3.0,
    max_retry_after_seconds=10.0,
    budget_seconds=30.0,
)
Answer = httpx.Response | Exception


class Upstream(httpx.BaseTransport):
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def error(status: int, code: str | None = None, **headers: str) -> httpx.Response:
    body = {"error": {"message": "no", "type": "x", "param": None, "code": code}}
    return httpx.Response(status, headers=headers, content=json.dumps(body).encode())


OK = httpx.Response(200, json={"id": "resp_1"})


def send(
    upstream: Upstream, method: str = "POST", path: str = "/v1/responses", policy: RetryPolicy = POLICY
) -> tuple[httpx.Response, list[float]]:
    waits: list[float] = []
    transport = RetryingTransport(upstream, policy, sleep=waits.append, draw=lambda: 1.0)
    with httpx.Client(transport=transport, base_url="https://upstream.test") as client:
        return client.request(method, path, json={"model": "m"}), waits


def test_a_rate_limit_waits_what_retry_after_ms_asks_then_succeeds() -> None:
    # Given an upstream that rate-limits twice, asking for 1.5 s, then answers
    upstream = Upstream(
        error(429, "rate_limit_exceeded", **{"retry-after-ms": "1500", "retry-after": "2"}),
        error(429, "rate_limit_exceeded", **{"retry-after-ms": "1500"}),
        OK,
    )
    # When a create goes out
    response, waits = send(upstream)
    # Then it was sent three times, waiting exactly the hinted 1.5 s (the precise header wins)
    assert response.status_code == 200
    assert waits == [1.5, 1.5]
    assert len(upstream.requests) == 3


def test_retry_after_in_seconds_and_as_a_date_are_honoured() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "7"})) == 7.0
    in_five = format_datetime(clock.now() + timedelta(seconds=5), usegmt=True)
    hinted = retry_after_seconds(httpx.Headers({"retry-after": in_five}))
    assert hinted is not None and 3.0 < hinted <= 5.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


def test_a_hint_beyond_the_bound_is_not_waited_for() -> None:
    # Given a rate limit that asks for a minute (more than the 10 s the policy will wait in a Lambda)
    upstream = Upstream(error(429, "rate_limit_exceeded", **{"retry-after": "60"}), OK)
    response, waits = send(upstream)
    # Then the 429 goes back to the caller (the workflow and the fallback decide), after one try
    assert response.status_code == 429 and waits == [] and len(upstream.requests) == 1


def test_insufficient_quota_is_never_retried() -> None:
    upstream = Upstream(error(429, "insufficient_quota"), OK)
    response, waits = send(upstream)
    assert response.status_code == 429 and waits == []
    assert response.json()["error"]["code"] == "insufficient_quota"  # the body is still readable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    upstream = Upstream(error(status), OK)
    response, waits = send(upstream)
    assert response.status_code == status and waits == [] and len(upstream.requests) == 1


def test_5xx_backs_off_exponentially_capped_then_gives_up() -> None:
    # Given an upstream that keeps answering 503 to a poll, and a jitter draw of 1 (the longest wait)
    upstream = Upstream(error(503))
    response, waits = send(upstream, "GET", "/v1/responses/resp_1")
    # Then each wait doubles from the base up to the cap, and after max_attempts the 503 is returned
    assert waits == [1.0, 2.0, 3.0]
    assert response.status_code == 503 and len(upstream.requests) == POLICY.max_attempts


def test_jitter_draws_below_the_exponential_ceiling() -> None:
    draws = iter([0.5, 0.25, 0.0, 1.0])
    waits: list[float] = []
    transport = RetryingTransport(Upstream(error(500)), POLICY, sleep=waits.append, draw=lambda: next(draws))
    with httpx.Client(transport=transport, base_url="https://upstream.test") as client:
        client.get("/v1/responses/resp_1")
    assert waits == [0.5, 0.5, 0.0]


def test_all_waits_together_stay_within_the_budget() -> None:
    # Given rate limits asking for 8 s each and a 20 s budget
    upstream = Upstream(error(429, "rate_limit_exceeded", **{"retry-after": "8"}))
    policy = RetryPolicy(max_attempts=10, max_retry_after_seconds=10.0, budget_seconds=20.0)
    response, waits = send(upstream, policy=policy)
    # Then it waits twice (16 s); a third wait would pass the budget
    assert waits == [8.0, 8.0] and response.status_code == 429
    assert sum(waits) <= policy.budget_seconds


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/responses/resp_1"),
        ("DELETE", "/v1/conversations/conv_1"),
        ("POST", "/v1/responses/r/cancel"),
    ],
)
def test_reads_deletes_and_cancels_are_retried_after_a_lost_connection(method: str, path: str) -> None:
    upstream = Upstream(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), OK)
    response, waits = send(upstream, method, path)
    assert response.status_code == 200 and waits == [1.0, 2.0]


@pytest.mark.parametrize("lost", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone")])
def test_a_create_that_lost_its_connection_is_not_sent_again(lost: Exception) -> None:
    # It may have reached the upstream: sending it again could start the model twice
    upstream = Upstream(lost, OK)
    with pytest.raises(type(lost)):
        send(upstream, "POST", "/v1/responses")
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize(
    "path", ["/v1/responses", "/v1/threads/t/runs", "/v1/threads/t/runs/r/submit_tool_outputs", "/v1/files"]
)
def test_a_5xx_answering_a_create_is_returned_at_once(status: int, path: str) -> None:
    # A proxy's 502/504 (or the upstream's own 500/503) may follow a create the upstream accepted:
    # sending it again could start the model twice, so the caller learns the outcome is unknown
    upstream = Upstream(error(status), OK)
    response, waits = send(upstream, "POST", path)
    assert response.status_code == status and waits == [] and len(upstream.requests) == 1


@pytest.mark.parametrize(
    "never_made",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("no answer to SYN"), httpx.PoolTimeout("pool full")],
)
def test_a_create_whose_connection_was_never_made_is_sent_again(never_made: Exception) -> None:
    # Nothing left: the upstream provably did not take it
    upstream = Upstream(never_made, OK)
    response, waits = send(upstream, "POST", "/v1/responses")
    assert response.status_code == 200 and waits == [1.0] and len(upstream.requests) == 2


@pytest.mark.parametrize(
    "lost", [httpx.WriteError("broken pipe"), httpx.ReadError("reset"), httpx.WriteTimeout("slow")]
)
def test_a_create_cut_while_being_sent_or_answered_is_not_sent_again(lost: Exception) -> None:
    upstream = Upstream(lost, OK)
    with pytest.raises(type(lost)):
        send(upstream, "POST", "/v1/responses")
    assert len(upstream.requests) == 1


def test_a_chat_completion_answered_5xx_is_asked_again_but_not_after_a_timeout() -> None:
    # It leaves nothing upstream: a second completion costs tokens, never a second answer
    response, waits = send(Upstream(error(502), OK), "POST", "/v1/chat/completions")
    assert response.status_code == 200 and waits == [1.0]
    slow = Upstream(httpx.ReadTimeout("slow"), OK)
    with pytest.raises(httpx.ReadTimeout):
        send(slow, "POST", "/v1/chat/completions")
    assert len(slow.requests) == 1
