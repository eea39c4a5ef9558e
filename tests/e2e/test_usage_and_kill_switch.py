"""Cost over HTTP: each run's usage and cost on both engines, the caller's usage by day, daily budgets, and
the operators' kill switch. Users are unique per test: usage counters outlive a test in the shared stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from threadrunner.models.records import Usage
from threadrunner.pricing import default_prices, estimate_cost
from threadrunner.settings import CostSettings

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

QUESTION = "What were total sales by region last quarter?"
SLOW_POLLS = {"THREADRUNNER_POLL_FIRST_SECONDS": "1", "THREADRUNNER_POLL_MAX_SECONDS": "1"}


def _user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ask(client: httpx.Client, purpose: str, message: str) -> dict[str, Any]:
    thread = new_thread(client, purpose)
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": message})
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(client, accepted.json()["id"])
    assert run["metrics"] is not None  # written with the final status, never after it
    return run


@pytest.fixture
def operator(local_stack: LocalStack) -> httpx.Client:
    token = issue_token(_user("operator"), groups=["staff", CostSettings().admin_group])
    with httpx.Client(
        base_url=local_stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


@pytest.mark.parametrize("engine", ["responses", "assistants"])
def test_runs_carry_usage_and_cost_and_the_usage_by_day_sums_them(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    configure: Callable[..., None],
    engine: str,
) -> None:
    configure(THREADRUNNER_ENGINE=engine)
    client = client_for(_user(f"usage-{engine}"))
    # Given two completed runs: one with tool rounds (the demo policy), one plain answer
    first = _ask(client, "tools", QUESTION)
    upstream.script(Plan.message("Hello."))
    second = _ask(client, "plain", "Say hello.")

    for run in (first, second):
        assert run["status"] == "completed"
        usage = Usage.model_validate(run["usage"])
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        # the cost is the price table applied to the run's model and usage
        expected = estimate_cost(run["model"], usage, default_prices())
        assert expected is not None and expected > 0
        assert run["metrics"]["estimated_cost_usd"] == pytest.approx(expected)
        assert run["metrics"]["status"] == "completed" and run["metrics"]["duration_seconds"] >= 0
    assert first["metrics"]["tool_calls"] == len(first["tool_calls"]) >= 1
    if engine == "responses":  # a tool round finds its prefix in the (emulated) prompt cache
        assert 0 < first["usage"]["cached_tokens"] < first["usage"]["prompt_tokens"]
    assert first["usage"]["total_tokens"] > second["usage"]["total_tokens"]  # tool rounds cost more

    # When the caller asks for today's usage
    today = datetime.now(UTC).date()
    answer = client.get("/v1/usage", params={"from": today.isoformat(), "to": today.isoformat()})

    # Then it is the sum of the runs
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["from"] == body["to"] == today.isoformat()
    (day,) = body["days"]
    assert day == body["total"]
    assert day["runs"] == 2
    for counter in (
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "total_tokens",
    ):
        assert day[counter] == first["usage"][counter] + second["usage"][counter]
    assert day["cost_usd"] == pytest.approx(
        first["metrics"]["estimated_cost_usd"] + second["metrics"]["estimated_cost_usd"]
    )


def test_usage_ranges_are_validated_and_bounded(client_for: Callable[[str], httpx.Client]) -> None:
    client = client_for(_user("ranges"))
    today = datetime.now(UTC).date()
    # Default: the last seven days, zeros included
    week = client.get("/v1/usage").json()
    assert [d["day"] for d in week["days"]][-1] == today.isoformat() and len(week["days"]) == 7
    assert week["total"]["runs"] == 0
    # Bad input names the field
    cases = [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()}, "from"),
        ({"from": (today - timedelta(days=400)).isoformat(), "to": today.isoformat()}, "to"),
    ]
    for params, field in cases:
        answer = client.get("/v1/usage", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["field"] == field


def test_a_user_over_the_daily_token_budget_is_refused_until_midnight(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a budget that one run crosses mid-way
    configure(THREADRUNNER_DAILY_TOKEN_BUDGET="50")
    client = client_for(_user("budget"))
    upstream.script(Plan.message("A long answer " * 20))
    crossing = _ask(client, "budget", "Tell me everything.")
    # Then that run finished
    assert crossing["status"] == "completed" and crossing["usage"]["total_tokens"] > 50

    # When the user starts another run, at once or queued
    thread = new_thread(client, "budget-next")
    refusals = [
        client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "again"}),
        client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "later", "if_busy": "enqueue"}),
    ]

    # Then it is refused with the budget, its limit, the usage and the reset (next UTC midnight)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    for refusal in refusals:
        assert refusal.status_code == 429, refusal.text
        body = refusal.json()
        assert body["code"] == "budget_exceeded" and body["budget"] == "daily_tokens"
        assert body["limit"] == 50 and body["used"] == crossing["usage"]["total_tokens"]
        assert datetime.fromisoformat(body["resets_at"]) == datetime(
            tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC
        )
        assert 0 < int(refusal.headers["Retry-After"]) <= 86_400
    # and nothing was created
    assert client.get(f"/v1/threads/{thread['id']}").json()["active_run_id"] is None


def test_operators_list_and_cancel_active_runs_and_everyone_else_gets_403(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    configure: Callable[..., None],
    operator: httpx.Client,
) -> None:
    configure(**SLOW_POLLS)
    upstream.script(Plan.never_finishes(), Plan.never_finishes())
    bob_id, carol_id = _user("bob"), _user("carol")
    bob, carol = client_for(bob_id), client_for(carol_id)
    # Given bob's active run with one queued behind it, and carol's active run
    thread = new_thread(bob, "kill")
    active = bob.post(f"/v1/threads/{thread['id']}/runs", json={"message": "forever"}).json()
    queued = bob.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "then me", "if_busy": "enqueue"}
    ).json()
    carols = carol.post(f"/v1/threads/{new_thread(carol, 'kill')['id']}/runs", json={"message": "x"}).json()

    # A user is no operator: the routes exist, and are forbidden
    for answer in (
        bob.get("/v1/admin/runs"),
        bob.post(f"/v1/admin/runs/{carols['id']}/cancel"),
        bob.post(f"/v1/admin/users/{carol_id}/runs/cancel"),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden"

    # An operator lists active runs across users, a page at a time
    first = operator.get("/v1/admin/runs", params={"user_id": bob_id, "limit": 1}).json()
    second = operator.get("/v1/admin/runs", params={"user_id": bob_id, "limit": 1, "after": first["next"]})
    listed = first["runs"] + second.json()["runs"]
    assert [r["id"] for r in listed] == [active["id"], queued["id"]]
    assert {r["user_id"] for r in listed} == {bob_id}
    everyone = operator.get("/v1/admin/runs", params={"limit": 100}).json()
    assert {active["id"], queued["id"], carols["id"]} <= {r["id"] for r in everyone["runs"]}
    bad = operator.get("/v1/admin/runs", params={"after": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["field"] == "after"

    # and cancels every run of a user: the queued one at once, the active one through Check run
    cancelled = operator.post(f"/v1/admin/users/{bob_id}/runs/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"user_id": bob_id, "ended": [queued["id"]], "cancelling": [active["id"]]}
    assert wait_for_run(bob, active["id"], timeout=30)["status"] == "cancelled"
    assert bob.get(f"/v1/runs/{queued['id']}").json()["status"] == "cancelled"
    # or one run
    one = operator.post(f"/v1/admin/runs/{carols['id']}/cancel")
    assert one.status_code == 202 and one.json()["cancel_requested"] is True
    assert wait_for_run(carol, carols["id"], timeout=30)["status"] == "cancelled"
    # and ended runs leave the active list
    left = operator.get("/v1/admin/runs", params={"limit": 100}).json()["runs"]
    assert not {active["id"], queued["id"], carols["id"]} & {r["id"] for r in left}
