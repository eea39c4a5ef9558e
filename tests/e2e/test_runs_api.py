"""Runs over HTTP: the workflow end to end on the local stack, the emulator as the model."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from threadrunner.tools.sample_data import build_sample_database

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import BOTH_COMPLETIONS, new_thread, wait_for_run

pytestmark = BOTH_COMPLETIONS  # the scenarios, whether webhooks or polls tell that the model is done

QUESTION = "What were total sales by region last quarter?"


def _last_full_quarter(today: date) -> tuple[str, str]:
    first_month = 3 * ((today.month - 1) // 3) + 1
    end = date(today.year, first_month, 1)
    start = date(end.year - 1, 10, 1) if first_month == 1 else date(end.year, first_month - 3, 1)
    return start.isoformat(), end.isoformat()


def _expected_totals(tmp_path: Path) -> dict[str, tuple[float, int]]:
    start, end = _last_full_quarter(datetime.now(UTC).date())
    with sqlite3.connect(build_sample_database(tmp_path / "expected.db")) as db:
        rows = db.execute(
            "SELECT c.region, ROUND(SUM(s.amount), 2), COUNT(*) FROM sales s JOIN customers c ON c.id = s.customer_id"
            " WHERE s.order_date >= ? AND s.order_date < ? GROUP BY c.region",
            (start, end),
        ).fetchall()
    return {region: (total, orders) for region, total, orders in rows}


def test_a_question_runs_two_tool_rounds_and_completes_with_the_data(
    alice: httpx.Client, upstream: EmulatorServer, tmp_path: Path
) -> None:
    # Given a thread with the Data Analyst (the emulator's demo policy plays the model)
    thread = new_thread(alice, "sales-by-region")
    # When the user asks a question that needs the database
    accepted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": QUESTION})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "queued" and accepted.json()["thread_id"] == thread["id"]
    run = wait_for_run(alice, accepted.json()["id"])
    # Then it completes after a schema round and a query round
    assert run["status"] == "completed", run
    assert [call["name"] for call in run["tool_calls"]] == [
        "get_table_schema",
        "get_table_schema",
        "query_database",
    ]
    query = json.loads(run["tool_calls"][2]["arguments"])["query"]
    assert "GROUP BY c.region" in query
    assert run["tool_calls"][2]["output"].startswith('{"columns"')
    # and every figure in the answer comes from the sample database
    expected = _expected_totals(tmp_path)
    assert expected, "the sample data should cover last quarter"
    for region, (total, orders) in expected.items():
        assert f"{region}: {total:,.2f}" in run["answer"], (region, run["answer"])
        assert f"{orders} orders" in run["answer"]
    assert (
        run["usage"]["total_tokens"] == run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"] > 0
    )
    assert run["execution"]["arn"].endswith(f":{run['id']}")
    assert run["execution"]["console_url"].startswith("https://")
    assert run["error"] is None and run["completed_at"] is not None
    # the model saw both tool outputs: three responses were created on one conversation
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert len(creates) == 3
    assert len({json.dumps(e.request_json["conversation"]) for e in creates}) == 1


def test_a_failed_upstream_run_ends_failed_with_its_reason(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.fail(code="server_error", message="the model crashed"))
    thread = new_thread(alice, "failing")
    run_id = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hello"}).json()["id"]
    run = wait_for_run(alice, run_id)
    assert run["status"] == "failed"
    assert run["error"] == {"code": "server_error", "message": "the model crashed"}
    # the thread is free again
    assert alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "again"}).status_code == 202


def test_a_run_past_its_deadline_is_cancelled_upstream_and_timed_out(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    configure(
        THREADRUNNER_RUN_DEADLINE_SECONDS="2",
        THREADRUNNER_POLL_FIRST_SECONDS="1",
        THREADRUNNER_POLL_MAX_SECONDS="1",
    )
    upstream.script(Plan.never_finishes())
    thread = new_thread(alice, "slow")
    run_id = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "take your time"}).json()["id"]
    run = wait_for_run(alice, run_id, timeout=30)
    assert run["status"] == "timed_out"
    assert run["error"]["code"] == "timed_out"
    cancels = [e for e in upstream.exchanges if e.method == "POST" and e.path.endswith("/cancel")]
    assert len(cancels) == 1


def test_quota_errors_fail_the_run_without_retrying(alice: httpx.Client, upstream: EmulatorServer) -> None:
    upstream.script(Plan.http_error(status=429, code="insufficient_quota", on="create", times=5))
    thread = new_thread(alice, "no-quota")
    run = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hi"}).json()["id"]
    )
    assert run["status"] == "failed"
    assert run["error"]["code"] == "UpstreamQuotaExceeded"
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert len(creates) == 1  # never retried: a person has to act


def test_another_users_run_is_not_found(
    alice: httpx.Client, upstream: EmulatorServer, client_for: Callable[[str], httpx.Client]
) -> None:
    thread = new_thread(alice, "mine")
    run = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hi"}).json()["id"]
    )
    response = client_for("bob").get(f"/v1/runs/{run['id']}")
    # Then bob learns nothing: the answer is the one for a run that never existed
    never = client_for("bob").get("/v1/runs/run_00000000000000000000000000")
    assert response.status_code == never.status_code == 404
    assert response.json().keys() == never.json().keys() == {"code", "message"}
    assert "answer" not in response.text


def test_a_second_run_while_one_is_active_is_refused(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    configure(
        THREADRUNNER_RUN_DEADLINE_SECONDS="2",
        THREADRUNNER_POLL_FIRST_SECONDS="1",
        THREADRUNNER_POLL_MAX_SECONDS="1",
    )
    upstream.script(Plan.never_finishes())
    thread = new_thread(alice, "busy")
    first = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "one"}).json()
    second = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "two"})
    assert second.status_code == 409
    assert second.json()["active_run_id"] == first["id"]
    assert wait_for_run(alice, first["id"], timeout=30)["status"] == "timed_out"
