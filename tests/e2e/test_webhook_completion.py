"""completion "webhook" over HTTP: the emulator ends each background response on its own and signs a webhook
to the stack's ``POST /v1/webhooks/openai``; "Wait for model" sleeps until it comes (no polls). A duplicate,
reordered, forged or unknown webhook does no harm, a dropped one is made up for by a poll, and a cancel
wakes a sleeping run at once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from threadrunner.executions import execution_arn
from threadrunner.openai_webhooks import signed_headers

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

pytestmark = pytest.mark.parametrize("completion", ["webhook"], indirect=True)

COUNT = {"query": "SELECT COUNT(*) AS n FROM sales"}


@contextmanager
def invocations(stack: LocalStack) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    with stack.lambdas.observed(lambda folder, _elapsed: counts.update([folder])):
        yield counts


def _run(client: httpx.Client, purpose: str, message: str = "How many sales?") -> dict[str, Any]:
    thread = new_thread(client, purpose)
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": message})
    assert accepted.status_code == 202, accepted.text
    return dict(accepted.json())


def _waits(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    """How each "Wait for model" ended: its output, or the error a Catch moved on with."""
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn(stack.state_machine_arn, run_id), maxResults=1000
    )["events"]
    ended = []
    for event in history:
        if (
            event["type"] == "TaskStateExited"
            and event["stateExitedEventDetails"]["name"] == "Wait for model"
        ):
            ended.append(json.loads(event["stateExitedEventDetails"]["output"])["completion"])
    return ended


def _started_response(upstream: EmulatorServer, timeout: float = 10) -> str:
    """The id of the first background response the stack created."""
    deadline = time.monotonic() + timeout
    while True:
        for exchange in upstream.exchanges:
            if exchange.method == "POST" and exchange.path == "/v1/responses" and exchange.status == 200:
                return str(json.loads(exchange.response_body)["id"])
        assert time.monotonic() < deadline, "no response was created upstream"
        time.sleep(0.05)


def test_the_webhook_ends_each_wait_and_check_run_reads_each_response_once(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given a turn with a tool round: two model calls, each ended upstream by time, nobody polling
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("There are 42 sales."))
    with invocations(local_stack) as counts:
        run = wait_for_run(alice, _run(alice, "webhook-turn")["id"])
    # Then the run completes, each wait was ended by a webhook (ids and status only), and Check run ran once
    # per model call: nothing polled in between
    assert run["status"] == "completed" and run["answer"] == "There are 42 sales.", run
    waits = _waits(local_stack, run["id"])
    assert [wait["status"] for wait in waits] == ["completed", "completed"]
    assert all(set(wait) == {"response_id", "status"} for wait in waits)
    assert counts["check_run"] == 2 and counts["await_model"] == 2
    assert counts["openai_webhook"] >= 2
    delivered = [d for d in upstream.webhook_deliveries if d.delivered]
    assert {d.status for d in delivered} == {200}


def test_duplicate_and_reordered_webhooks_resume_each_wait_once(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given an upstream that sends every webhook three times
    upstream.configure_webhooks(duplicates=3)
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("42."))
    with invocations(local_stack) as counts:
        run = wait_for_run(alice, _run(alice, "webhook-duplicates")["id"])
    # Then every copy is answered 200, and each wait was resumed once
    assert run["status"] == "completed", run
    assert len(_waits(local_stack, run["id"])) == 2 and counts["check_run"] == 2
    upstream.wait_for_webhook_deliveries(6)
    assert [d.status for d in upstream.webhook_deliveries if d.delivered] == [200] * 6


def test_a_webhook_that_never_comes_is_made_up_for_by_a_poll(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given an upstream that drops the next webhook
    upstream.configure_webhooks(drop_next=1)
    upstream.script(Plan.message("Late but here."))
    run = wait_for_run(alice, _run(alice, "webhook-dropped")["id"])
    # Then after webhook_fallback_seconds the wait times out, Check run polls, and the run completes
    assert run["status"] == "completed" and run["answer"] == "Late but here.", run
    [wait] = _waits(local_stack, run["id"])
    assert wait["Error"] == "States.Timeout"


def test_forged_stale_and_unknown_webhooks_change_nothing(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
) -> None:
    # Given a run waiting for a model that never finishes (and no fallback poll while the test looks)
    configure(THREADRUNNER_WEBHOOK_FALLBACK_SECONDS="60")
    upstream.script(Plan.never_finishes())
    run = _run(alice, "webhook-forged")
    response_id = _started_response(upstream)
    body = json.dumps(
        {
            "id": "evt_forged",
            "object": "event",
            "type": "response.completed",
            "created_at": int(time.time()),
            "data": {"id": response_id},
        }
    )
    forged_secret = "whsec_" + "Zm9yZ2VkIGJ5IHNvbWVib2R5IGVsc2UgZW50aXJlbHk="
    secret = local_stack.webhook_secret()
    with httpx.Client(base_url=local_stack.api_url, timeout=30) as anyone:
        # When someone posts a webhook signed with another secret, a stale one, or none at all
        forged = anyone.post(
            "/v1/webhooks/openai",
            content=body,
            headers=signed_headers(forged_secret, "wh_forged", int(time.time()), body),
        )
        stale = anyone.post(
            "/v1/webhooks/openai",
            content=body,
            headers=signed_headers(secret, "wh_stale", int(time.time()) - 600, body),
        )
        unsigned = anyone.post("/v1/webhooks/openai", content=body)
        # and a genuine one for a response nobody waits for
        unknown_body = body.replace(response_id, "resp_nobody_waits_for_this")
        unknown = anyone.post(
            "/v1/webhooks/openai",
            content=unknown_body,
            headers=signed_headers(secret, "wh_unknown", int(time.time()), unknown_body),
        )
    # Then the first three are refused with 401 and the run sleeps on; the unknown one is acknowledged
    assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
    assert forged.json()["code"] == "invalid_signature"
    assert unknown.status_code == 200 and unknown.json()["resumed"] is False
    time.sleep(0.5)
    assert alice.get(f"/v1/runs/{run['id']}").json()["status"] in ("queued", "in_progress")
    assert _waits(local_stack, run["id"]) == []
    local_stack.abort_executions(timeout=10)


def test_a_cancel_wakes_a_run_asleep_until_its_webhook(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
) -> None:
    # Given a run asleep until a webhook that will not come for a long while
    configure(THREADRUNNER_WEBHOOK_FALLBACK_SECONDS="60")
    upstream.script(Plan.never_finishes())
    run = _run(alice, "webhook-cancel")
    _started_response(upstream)
    time.sleep(0.5)  # Await model stores its token
    # When the user cancels it
    assert alice.post(f"/v1/runs/{run['id']}/cancel").status_code == 202
    # Then the wait ends at once (not at the fallback), Check run cancels upstream, and the run ends
    ended = wait_for_run(alice, run["id"], timeout=30)
    assert ended["status"] == "cancelled", ended
    assert _waits(local_stack, run["id"])[0]["status"] == "cancel_requested"
