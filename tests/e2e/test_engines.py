"""The same scenarios on every engine: the API and the workflow do not care which upstream runs the model.

Each test picks the environment's engine with ``configure(THREADRUNNER_ENGINE=...)``; a new thread (one
purpose per test and engine) is created with it and keeps it. Every exchange with the emulator is checked
against the OpenAI OpenAPI description by the ``upstream`` fixture.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from threadrunner.tools.sample_data import build_sample_database

from local.emulator import EmulatorServer, Plan
from local.emulator.policy import last_full_quarter, sales_by_region_sql
from tests.e2e.conftest import BOTH_COMPLETIONS, new_thread, wait_for_run

pytestmark = BOTH_COMPLETIONS  # the scenarios, whether webhooks or polls tell that the model is done

QUESTION = "What were total sales by region last quarter?"
ENGINES = ["responses", "assistants", "chat"]
# What starts a model turn, and where the upstream runs live, per engine.
TURN_STARTS = {
    "responses": lambda path: path == "/v1/responses",
    "assistants": lambda path: path.endswith("/runs") or path.endswith("/submit_tool_outputs"),
    "chat": lambda path: path == "/v1/chat/completions",
}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, configure: Callable[..., None]) -> str:
    configure(THREADRUNNER_ENGINE=request.param)
    return str(request.param)


def _ask(client: httpx.Client, engine: str, purpose: str, message: str, timeout: float = 60) -> dict:
    thread = new_thread(client, f"{purpose}-{engine}")
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": message})
    assert accepted.status_code == 202, accepted.text
    return wait_for_run(client, accepted.json()["id"], timeout=timeout)


def _turns(upstream: EmulatorServer, engine: str) -> list[str]:
    """The calls that started a model turn (a refused call started none)."""
    return [
        e.path
        for e in upstream.exchanges
        if e.method == "POST" and e.status == 200 and TURN_STARTS[engine](e.path)
    ]


def test_a_plain_question_gets_the_models_answer(
    alice: httpx.Client, upstream: EmulatorServer, engine: str
) -> None:
    # Given a model that answers without tools
    upstream.script(Plan.message("Hello from the model."))
    # When a user asks
    run = _ask(alice, engine, "plain", "hello")
    # Then the run completes with that answer and what it cost, after one model turn
    assert run["status"] == "completed", run
    assert run["answer"] == "Hello from the model."
    assert run["tool_calls"] == [] and run["error"] is None
    assert run["usage"]["total_tokens"] > 0
    assert len(_turns(upstream, engine)) == 1


def test_two_tool_rounds_complete_with_the_figures_from_the_database(
    alice: httpx.Client, upstream: EmulatorServer, engine: str, tmp_path: Path
) -> None:
    # Given the demo model (schemas, then one query, then the answer)
    run = _ask(alice, engine, "sales", QUESTION)
    # Then the run went through both tool rounds and answers with the database's figures
    assert run["status"] == "completed", run
    assert [call["name"] for call in run["tool_calls"]] == [
        "get_table_schema",
        "get_table_schema",
        "query_database",
    ]
    expected = _expected_totals(tmp_path)
    assert expected, "the sample data should cover last quarter"
    for region, (total, orders) in expected.items():
        assert f"{region}: {total:,.2f} ({orders:,} orders)" in run["answer"], (region, run["answer"])
    usage = run["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    # one turn for the question, one per round of tool outputs
    assert len(_turns(upstream, engine)) == 3


def test_a_failed_upstream_run_ends_failed_with_its_reason(
    alice: httpx.Client, upstream: EmulatorServer, engine: str
) -> None:
    if engine == "chat":  # a completion has no failed state: the upstream refuses the call (400)
        upstream.script(Plan.fail(code="invalid_prompt", message="the model crashed"))
        run = _ask(alice, engine, "failing", "hello")
        assert run["status"] == "failed"
        assert run["error"]["code"] == "UpstreamRejected"
        assert run["error"]["message"] == "the upstream refused the request (400): the model crashed"
        return
    upstream.script(Plan.fail(code="server_error", message="the model crashed"))
    run = _ask(alice, engine, "failing", "hello")
    assert run["status"] == "failed"
    assert run["error"] == {"code": "server_error", "message": "the model crashed"}


def test_a_run_past_its_deadline_is_timed_out_and_cancelled_upstream(
    alice: httpx.Client, upstream: EmulatorServer, engine: str, configure: Callable[..., None]
) -> None:
    # Given a model that never finishes, and a two-second deadline
    configure(
        THREADRUNNER_RUN_DEADLINE_SECONDS="2",
        THREADRUNNER_POLL_FIRST_SECONDS="1",
        THREADRUNNER_POLL_MAX_SECONDS="1",
    )
    upstream.script(Plan.never_finishes())
    # When a user asks
    run = _ask(alice, engine, "slow", "take your time", timeout=30)
    # Then the run times out, and the upstream run was cancelled (a chat completion holds nothing upstream:
    # the engine stopped waiting for it at the deadline)
    assert run["status"] == "timed_out"
    assert run["error"]["code"] == "timed_out"
    assert _cancelled_upstream(upstream, engine) == ([] if engine == "chat" else ["cancelled"])


def test_a_users_cancel_stops_the_upstream_run(
    alice: httpx.Client, upstream: EmulatorServer, engine: str, configure: Callable[..., None]
) -> None:
    # Given a run the model never finishes, under way upstream
    configure(THREADRUNNER_POLL_FIRST_SECONDS="1", THREADRUNNER_POLL_MAX_SECONDS="1")
    if engine == "chat":
        return _a_users_cancel_discards_the_chat_answer(alice, upstream)
    upstream.script(Plan.never_finishes())
    thread = new_thread(alice, f"cancel-{engine}")
    run_id = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "forever"}).json()["id"]
    deadline = time.monotonic() + 10
    while not _turns(upstream, engine):
        assert time.monotonic() < deadline, "the run never started upstream"
        time.sleep(0.05)
    # When the user cancels it
    assert alice.post(f"/v1/runs/{run_id}/cancel").status_code in (200, 202)
    # Then it ends cancelled, and so does the upstream run
    assert wait_for_run(alice, run_id, timeout=30)["status"] == "cancelled"
    assert _cancelled_upstream(upstream, engine) == ["cancelled"]


def _a_users_cancel_discards_the_chat_answer(alice: httpx.Client, upstream: EmulatorServer) -> None:
    # Given a completion the model takes two seconds to answer (Start run waits for it)
    upstream.script(Plan.slow(4, Plan.message("too late")))
    thread = new_thread(alice, "cancel-chat")
    run_id = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "slowly"}).json()["id"]
    # When the user cancels while the model is still answering
    assert alice.post(f"/v1/runs/{run_id}/cancel").status_code in (200, 202)
    # Then the run ends cancelled and its answer is dropped: nothing upstream was left to cancel
    run = wait_for_run(alice, run_id, timeout=30)
    assert run["status"] == "cancelled" and run["answer"] is None
    assert _cancelled_upstream(upstream, "chat") == []


def test_a_thread_keeps_the_engine_it_was_created_with(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a thread created while the environment ran the assistants engine
    configure(THREADRUNNER_ENGINE="assistants")
    thread = new_thread(alice, "engine-for-life")
    # When the environment switches to responses and the thread runs
    configure(THREADRUNNER_ENGINE="responses")
    run_id = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hi"}).json()["id"]
    # Then the run still went to the Assistants API
    assert wait_for_run(alice, run_id)["status"] == "completed"
    paths = [e.path for e in upstream.exchanges if e.method == "POST"]
    assert any(path.startswith("/v1/threads/") and path.endswith("/runs") for path in paths)
    assert "/v1/responses" not in paths


def _cancelled_upstream(upstream: EmulatorServer, engine: str) -> list[str | None]:
    """The status now of each upstream run or response we asked to cancel."""
    statuses: list[str | None] = []
    with OpenAI(base_url=upstream.base_url, api_key="sk-test-e2e", max_retries=0) as client:
        for exchange in upstream.exchanges:
            if exchange.method != "POST" or not exchange.path.endswith("/cancel"):
                continue
            # /v1/responses/<id>/cancel or /v1/threads/<thread id>/runs/<id>/cancel
            parts = exchange.path.split("/")
            if engine == "responses":
                statuses.append(client.responses.retrieve(parts[3]).status)
            else:
                statuses.append(client.beta.threads.runs.retrieve(parts[5], thread_id=parts[3]).status)
    return statuses


def _expected_totals(tmp_path: Path) -> dict[str, tuple[float, int]]:
    quarter = last_full_quarter(datetime.now(UTC).date())
    with sqlite3.connect(build_sample_database(tmp_path / "expected.db")) as db:
        rows = db.execute(sales_by_region_sql(quarter)).fetchall()
    return {region: (total, orders) for region, total, orders in rows}
