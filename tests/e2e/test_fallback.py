"""Graceful degradation as a client sees it: a run whose engine has an outage is answered by the fallback
engine, from the thread's own message log, and the run resource says so; a run whose create may have
reached its engine never moves. (Each outage signal, the circuit breaker's states and a failing fallback
are covered in tests/integration/test_fallback.py, lost creates in tests/integration/test_lost_creates.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from threadrunner.settings import RunSettings, UpstreamSettings
from threadrunner.stores.breakers import CircuitBreakerStore

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.lifecycle import table

FALLBACK = {
    "THREADRUNNER_ENGINE": "responses",
    "THREADRUNNER_FALLBACK_ENGINE": "chat",
    "THREADRUNNER_RETRY_BASE_SECONDS": "0.01",
    "THREADRUNNER_RETRY_MAX_BACKOFF_SECONDS": "0.02",
}


@pytest.fixture(autouse=True)
def closed_circuit(local_stack: LocalStack) -> Iterator[None]:
    """Each test starts, and leaves, with the responses engine's circuit closed (the stack outlives it)."""
    breakers = CircuitBreakerStore(table(local_stack.table_names, "runs"))
    environment = RunSettings().environment
    breakers.close(environment, "responses")
    yield
    breakers.close(environment, "responses")


def test_an_outage_moves_the_run_to_the_chat_fallback_and_the_run_says_so(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a thread on the responses engine with one answered run, and chat as the fallback
    configure(**FALLBACK)
    attempts = UpstreamSettings().retry_max_attempts  # of one upstream call, within Start run
    thread = new_thread(alice, "fallback")
    upstream.script(Plan.message("Hello, I am the primary."))
    first = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Who are you?"}).json()
    assert wait_for_run(alice, first["id"])["engine"] == "responses"
    # When the Responses API rate-limits every attempt of the next run's create (a refusal: nothing started)
    upstream.script(
        Plan.http_error(429, "rate_limit_exceeded", on="create", times=attempts, retry_after_ms=10),
        Plan.message("The fallback speaking."),
    )
    second = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Still there?"}).json()
    run = wait_for_run(alice, second["id"])
    # Then the chat engine answered, and the run resource says why
    assert run["status"] == "completed", run
    assert run["answer"] == "The fallback speaking."
    assert (run["engine"], run["fallback_from"]) == ("chat", "responses")
    assert run["fallback_reason"] == "UpstreamRateLimited: the upstream rate-limited the request"
    # and the completion replayed the thread from our own log: the earlier question and answer, then this one
    completion = next(e for e in upstream.exchanges if e.path == "/v1/chat/completions")
    sent = [(m["role"], m["content"]) for m in completion.request_json["messages"][1:]]
    assert sent == [
        ("user", "Who are you?"),
        ("assistant", "Hello, I am the primary."),
        ("user", "Still there?"),
    ]
    # When a third run starts during the cooling period
    third = alice.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "And now?", "if_busy": "enqueue"}
    ).json()
    run = wait_for_run(alice, third["id"])
    # Then it went straight to the fallback: the Responses API was not asked again
    assert run["engine"] == "chat" and run["fallback_reason"].startswith(
        "responses is skipped after an outage"
    )
    assert [e.path for e in upstream.exchanges if e.path == "/v1/responses"] == ["/v1/responses"] * (
        1 + attempts
    )


def test_a_create_answered_5xx_fails_the_run_instead_of_asking_the_fallback(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given chat as the fallback, and a Responses API (or a proxy before it) answering 502 to a create: the
    # upstream may have accepted it, so the model may be answering already
    configure(**FALLBACK)
    thread = new_thread(alice, "lost-create")
    upstream.script(Plan.http_error(502, None, on="create"), Plan.message("never asked"))
    posted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Anyone?"}).json()
    run = wait_for_run(alice, posted["id"])
    # Then the run failed saying so, after one create, and the fallback was not asked
    assert run["status"] == "failed", run
    assert run["error"]["code"] == "UpstreamOutcomeUnknown"
    assert (run["engine"], run["fallback_from"]) == ("responses", None)
    assert [e.status for e in upstream.exchanges if e.path == "/v1/responses"] == [502]
    assert not [e for e in upstream.exchanges if e.path == "/v1/chat/completions"]
    # and the engine's circuit opened: the thread's next run starts on the fallback without asking it
    again = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Now?"}).json()
    later = wait_for_run(alice, again["id"])
    assert later["engine"] == "chat" and later["answer"] == "never asked"
    assert [e.status for e in upstream.exchanges if e.path == "/v1/responses"] == [502]
