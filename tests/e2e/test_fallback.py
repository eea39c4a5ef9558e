"""Graceful degradation as a client sees it: a run whose engine has an outage is answered by the fallback
engine, from the thread's own message log, and the run resource says so. (Each outage signal, the circuit
breaker's states and a failing fallback are covered in tests/integration/test_fallback.py.)"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import new_thread, wait_for_run


def test_an_outage_moves_the_run_to_the_chat_fallback_and_the_run_says_so(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a thread on the responses engine with one answered run, and chat as the fallback
    configure(
        THREADRUNNER_ENGINE="responses",
        THREADRUNNER_FALLBACK_ENGINE="chat",
        THREADRUNNER_RETRY_BASE_SECONDS="0.01",
        THREADRUNNER_RETRY_MAX_BACKOFF_SECONDS="0.02",
    )
    thread = new_thread(alice, "fallback")
    upstream.script(Plan.message("Hello, I am the primary."))
    first = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Who are you?"}).json()
    assert wait_for_run(alice, first["id"])["engine"] == "responses"
    # When the Responses API answers 503 to every attempt of the next run's create
    upstream.script(Plan.http_error(503, None, on="create", times=4), Plan.message("The fallback speaking."))
    second = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Still there?"}).json()
    run = wait_for_run(alice, second["id"])
    # Then the chat engine answered, and the run resource says why
    assert run["status"] == "completed", run
    assert run["answer"] == "The fallback speaking."
    assert (run["engine"], run["fallback_from"]) == ("chat", "responses")
    assert run["fallback_reason"] == "UpstreamUnavailable: the upstream answered 503"
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
    assert [e.path for e in upstream.exchanges if e.path == "/v1/responses"] == ["/v1/responses"] * 5
