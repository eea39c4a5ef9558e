"""Prices are never guessed, over HTTP: a run on a model without a price costs null, and under a daily cost
budget such a run is refused (422 ``model_unpriced``, nothing created) unless the environment lists a price.

``gpt-5-pro-max`` stands for any unlisted variant: a prefix match would have priced it as ``gpt-5``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import new_thread, wait_for_run

UNPRICED = "gpt-5-pro-max"


def _client(client_for: Callable[[str], httpx.Client]) -> httpx.Client:
    # Usage counters outlive a test in the shared stack: a user of its own
    return client_for(f"pricing-{uuid.uuid4().hex[:8]}")


def test_under_a_cost_budget_a_run_on_an_unpriced_model_is_a_422_and_creates_nothing(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a daily cost budget and an assistant on a model the price table does not list
    configure(THREADRUNNER_DAILY_COST_BUDGET_USD="5", THREADRUNNER_MODEL=UNPRICED)
    client = _client(client_for)
    thread = new_thread(client, "unpriced")
    # When a run is posted, at once or queued
    refusals = [
        client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go"}),
        client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "later", "if_busy": "enqueue"}),
    ]
    # Then 422 names the model, and nothing was created: no message, no run, the thread free, no upstream call
    for refusal in refusals:
        assert refusal.status_code == 422, refusal.text
        body = refusal.json()
        assert (body["code"], body["field"]) == ("model_unpriced", "model")
        assert UNPRICED in body["message"]
    assert client.get(f"/v1/threads/{thread['id']}/messages").json()["messages"] == []
    current = client.get(f"/v1/threads/{thread['id']}").json()
    assert (current["active_run_id"], current["queued_run_ids"]) == (None, [])
    assert upstream.exchanges == []


def test_a_price_the_environment_lists_lets_the_run_start_and_costs_it(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    price = {UNPRICED: {"input": 15, "cached_input": 15, "output": 120}}
    configure(
        THREADRUNNER_DAILY_COST_BUDGET_USD="5",
        THREADRUNNER_MODEL=UNPRICED,
        THREADRUNNER_PRICES=json.dumps(price),
    )
    client = _client(client_for)
    upstream.script(Plan.message("Priced."))
    thread = new_thread(client, "listed")
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go"})
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(client, accepted.json()["id"])
    assert run["status"] == "completed" and run["model"] == UNPRICED
    assert run["metrics"]["estimated_cost_usd"] > 0


def test_without_a_cost_budget_an_unpriced_run_completes_with_a_null_cost(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_MODEL=UNPRICED)
    client = _client(client_for)
    upstream.script(Plan.message("Unknown cost."))
    thread = new_thread(client, "no-budget")
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go"})
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(client, accepted.json()["id"])
    # Its cost is unknown, never a guess (a prefix match would have priced it as gpt-5)
    assert run["status"] == "completed" and run["metrics"]["estimated_cost_usd"] is None
    today = client.get("/v1/usage").json()["total"]
    assert (today["unpriced_runs"], today["cost_usd"]) == (1, 0)
