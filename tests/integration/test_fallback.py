"""Graceful degradation: Start run against a real ``responses`` primary and a real ``chat`` fallback (two
emulators, real HTTP, the production retry transport) over moto DynamoDB.

Covers each outage signal, what is not an outage, the circuit breaker (open, straight to the fallback,
one trial after the cooling period, a failed trial) and a failing fallback. A create whose outcome is
unknown is never an outage: test_lost_creates.py. Every exchange with either
emulator is checked against the OpenAI OpenAPI description.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from threadrunner import clock
from threadrunner.errors import (
    UpstreamQuotaExceeded,
    UpstreamRejected,
    UpstreamsFailed,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from threadrunner.fallback import Route
from threadrunner.models.records import RunRecord
from threadrunner.models.workflow import FinishRunInput, RunProgress, StepError
from threadrunner.workflow import finish_steps

from local.emulator import EmulatorServer, Plan
from tests.support.openai_contract import validate_exchange
from tests.support.upstream_worlds import RETRIES, Fault, World, closed_port_url, worlds


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EmulatorServer, EmulatorServer]]:
    with EmulatorServer(port=0) as primary, EmulatorServer(port=0) as fallback:
        yield primary, fallback


@pytest.fixture
def make_world(servers: tuple[EmulatorServer, EmulatorServer]) -> Iterator[Callable[..., World]]:
    with worlds(*servers) as make:
        yield make
    for server in servers:
        for exchange in server.exchanges:
            validate_exchange(exchange)


def rate_limited(world: World) -> None:
    """An outage: every attempt of the primary's create is refused 429 (nothing was created)."""
    world.primary.script(
        Plan.http_error(429, "rate_limit_exceeded", times=RETRIES.max_attempts, retry_after_ms=30)
    )


OUTAGES: dict[str, tuple[Callable[[World], None], str]] = {
    # Not a model turn: a 5xx there proves nothing was started (a 5xx answering a create does not: see
    # test_lost_creates.py)
    "a 5xx creating the conversation": (
        lambda w: w.wire.pending.append(Fault("/conversations", 503, "before")),
        "UpstreamUnavailable: the upstream answered 503",
    ),
    "429 after the retries": (rate_limited, "UpstreamRateLimited"),
    "404 (the endpoint is gone)": (
        lambda w: w.primary.script(Plan.http_error(404, None)),
        "UpstreamNotFound: the upstream refused the request (404)",
    ),
    "410 (the endpoint is gone)": (
        lambda w: w.primary.script(Plan.http_error(410, None)),
        "UpstreamNotFound: the upstream refused the request (410)",
    ),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_an_outage_moves_the_run_to_the_fallback(make_world: Callable[..., World], outage: str) -> None:
    # Given a primary with an outage and a healthy chat fallback
    world = make_world()
    cause, reason = OUTAGES[outage]
    cause(world)
    world.fallback.script(Plan.message("Answered by the fallback."))
    # When the run starts
    run = world.start(world.new_run())
    # Then it runs on the fallback, says so, and answers from there
    assert (run.engine, run.fallback_from) == ("chat", "responses")
    assert run.fallback_reason is not None and run.fallback_reason.startswith(reason), run.fallback_reason
    assert world.answer(run) == "Answered by the fallback."
    assert world.creates(world.fallback) == ["/v1/chat/completions"]
    # and the primary's circuit is open
    assert world.breakers.get("dev", "responses") is not None


def test_a_rate_limit_is_retried_waiting_what_retry_after_asks(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.primary.script(
        Plan.http_error(429, "rate_limit_exceeded", times=RETRIES.max_attempts, retry_after_ms=30)
    )
    world.fallback.script(Plan.message("ok"))
    world.start(world.new_run())
    # Every attempt of the primary's create was refused, each wait the 30 ms the upstream asked for
    assert world.creates(world.primary) == ["/v1/responses"] * RETRIES.max_attempts
    assert world.waits == [0.03] * (RETRIES.max_attempts - 1)


def test_a_connection_never_made_moves_the_run_to_the_fallback(make_world: Callable[..., World]) -> None:
    # Given a primary nobody listens for: each create was refused before it was sent, and tried again
    world = make_world(primary_url=closed_port_url())
    world.fallback.script(Plan.message("Answered by the fallback."))
    run = world.start(world.new_run())
    assert (run.engine, run.fallback_from) == ("chat", "responses")
    assert (run.fallback_reason or "").startswith(
        "UpstreamUnavailable: the upstream did not answer: APIConnectionError"
    )
    assert len(world.waits) == RETRIES.max_attempts - 1
    assert world.answer(run) == "Answered by the fallback."


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "invalid_value", UpstreamRejected),
        (401, "invalid_api_key", UpstreamUnauthorized),
        (403, None, UpstreamUnauthorized),
        (429, "insufficient_quota", UpstreamQuotaExceeded),
    ],
)
def test_refusals_are_not_outages(
    make_world: Callable[..., World], status: int, code: str | None, error: type[Exception]
) -> None:
    # Given a primary that refuses the request (not an outage: another upstream would not help)
    world = make_world()
    world.primary.script(Plan.http_error(status, code, times=RETRIES.max_attempts))
    run = world.new_run()
    # Then Start run fails with the refusal's own name, after one attempt, and nothing moved
    with pytest.raises(error):
        world.start(run)
    assert world.creates(world.primary) == ["/v1/responses"] and world.waits == []
    assert world.ctx.runs.get(run.id).engine == "responses"
    assert world.creates(world.fallback) == []
    assert world.breakers.get("dev", "responses") is None


def test_with_fallback_off_an_outage_fails_the_run(make_world: Callable[..., World]) -> None:
    world = make_world(fallback_engine="off")
    world.wire.pending.append(Fault("/conversations", 503, "before"))
    with pytest.raises(UpstreamUnavailable):
        world.start(world.new_run())
    assert world.creates(world.fallback) == []
    assert world.breakers.get("dev", "responses") is None


def test_an_open_circuit_sends_later_runs_straight_to_the_fallback(make_world: Callable[..., World]) -> None:
    # Given a primary that just had an outage
    world = make_world()
    rate_limited(world)
    world.start(world.new_run("first"))
    asked = len(world.creates(world.primary))
    # When the next run starts within the cooling period
    second = world.start(world.new_run("second"))
    # Then the primary is not asked at all, and the run says why it is on the fallback
    assert len(world.creates(world.primary)) == asked
    assert (second.engine, second.fallback_from) == ("chat", "responses")
    assert (second.fallback_reason or "").startswith("responses is skipped after an outage (circuit open): ")
    assert "UpstreamRateLimited" in (second.fallback_reason or "")
    assert world.answer(second)


def after_cooling(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """The clock moves past the cooling period."""
    later = clock.now() + timedelta(seconds=world.ctx.run_settings.breaker_cooling_seconds + 1)
    monkeypatch.setattr(clock, "now", lambda: later)


def test_after_the_cooling_period_one_run_tries_the_primary_again(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an open circuit whose cooling period is over
    world = make_world(breaker_cooling_seconds=60)
    rate_limited(world)
    world.start(world.new_run("outage"))
    after_cooling(monkeypatch, world)
    fallback = world.ctx.fallback
    assert fallback is not None
    # When runs ask where to start, one gets the trial and the ones meanwhile still go to the fallback
    trial, meanwhile = fallback.route("responses"), fallback.route("responses")
    assert (trial.engine, trial.trial) == ("responses", True)
    assert (meanwhile.engine, meanwhile.fallback_from) == ("chat", "responses")
    # When a trial run starts (a trial whose run never reported back expires after the cooling period; the
    # clock moves past it here) and the primary works
    later = clock_after(world, 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    run = world.start(world.new_run("trial"))
    # Then the run stays on the primary and the circuit is closed for everyone
    assert (run.engine, run.fallback_from) == ("responses", None)
    assert world.breakers.get("dev", "responses") is None
    assert fallback.route("responses") == Route("responses")


def clock_after(world: World, seconds: int) -> datetime:
    """``seconds`` after the breaker's cooling period and trial are both over."""
    state = world.breakers.get("dev", "responses")
    assert state is not None
    return datetime.fromtimestamp(max(state.open_until, state.trial_until or 0) + seconds, tz=UTC)


def test_a_failed_trial_opens_the_circuit_again(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(breaker_cooling_seconds=60)
    rate_limited(world)
    world.start(world.new_run("outage"))
    first = world.breakers.get("dev", "responses")
    after_cooling(monkeypatch, world)
    # When the trial run meets the outage again
    rate_limited(world)
    run = world.start(world.new_run("trial"))
    # Then it is answered by the fallback, and a new cooling period starts
    assert (run.engine, run.fallback_from) == ("chat", "responses")
    again = world.breakers.get("dev", "responses")
    assert first is not None and again is not None and again.open_until > first.open_until
    assert again.trial_until is None


def test_when_the_fallback_fails_too_the_run_fails_with_both_errors(make_world: Callable[..., World]) -> None:
    # Given a primary with an outage and a fallback that refuses the prompt
    world = make_world()
    rate_limited(world)
    world.fallback.script(Plan.fail("invalid_prompt", "the fallback refused"))
    run = world.new_run("are you there?")
    # When the run starts, both fail; Then the run failed with both reasons, its message kept
    reasons = failed_with_both_reasons(world, run)
    assert "responses: UpstreamRateLimited: the upstream rate-limited the request" in reasons
    assert (
        "fallback chat: UpstreamRejected: the upstream refused the request (400): the fallback refused"
        in (reasons)
    )


def failed_with_both_reasons(world: World, run: RunRecord) -> str:
    """Start ``run`` expecting both engines to fail, end it as the workflow's Catch does (Finish run), check
    it failed with UpstreamsFailed and its user message is still in the thread's log; returns the reasons."""
    with pytest.raises(UpstreamsFailed) as failed:
        world.start(run)
    error = failed.value
    cause = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)})
    finish_steps.finish_run(
        FinishRunInput(
            run_id=run.id,
            run=RunProgress(status="queued"),
            error=StepError(Error=type(error).__name__, Cause=cause),
        ),
        world.ctx,
    )
    ended = world.ctx.runs.get(run.id)
    assert ended.status == "failed" and ended.error is not None
    assert ended.error.code == "UpstreamsFailed"
    logged, _ = world.ctx.messages.page(run.thread_id, limit=10)
    assert [(m.role, m.content) for m in logged] == [("user", run.message)]
    return ended.error.message


def test_a_run_with_a_text_file_falls_back_with_the_file_inlined(make_world: Callable[..., World]) -> None:
    # Given a responses run with a CSV (staged upstream, its upload still in S3), and a primary outage
    world = make_world()
    rate_limited(world)
    world.fallback.script(Plan.message("North sold most."))
    run = world.new_run("Which region sold most?", {"sales.csv": ("text/csv", b"region,total\nNorth,9\n")})
    # When the run starts, it moves to chat
    started = world.start(run)
    assert (started.engine, started.fallback_from) == ("chat", "responses")
    # Then the chat completion's user message carries the CSV's text under its header
    create = next(e for e in world.fallback.exchanges if e.path == "/v1/chat/completions")
    (user,) = [m["content"] for m in create.request_json["messages"] if m["role"] == "user"]
    assert user == (
        "Which region sold most?\n\n----- file sales.csv (text/csv) -----\n"
        "region,total\nNorth,9\n----- end of sales.csv -----"
    )
    assert world.answer(started) == "North sold most."


def test_a_non_text_file_fails_the_fallback_and_the_run_ends_with_both_reasons(
    make_world: Callable[..., World],
) -> None:
    # Given a responses run with a CSV and a PDF, and a primary outage
    world = make_world()
    rate_limited(world)
    files = {"sales.csv": ("text/csv", b"region\nNorth\n"), "brief.pdf": ("application/pdf", b"%PDF-1.7")}
    run = world.new_run("Summarise both", files)
    # When the run starts, the primary fails and chat cannot take the PDF
    reasons = failed_with_both_reasons(world, run)
    # Then the run failed with both reasons, the second naming the PDF, its message kept as it was
    assert "responses: UpstreamRateLimited: the upstream rate-limited the request" in reasons
    assert f"fallback chat: FileNotInlinable: file_ids.1: file {run.file_ids[1]} (brief.pdf)" in reasons
    assert "application/pdf, and the chat engine reads only text files" in reasons
    # and chat was never asked
    assert world.creates(world.fallback) == []
