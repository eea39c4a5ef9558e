"""Streaming the model's words over HTTP: a run created with ``"stream": true`` logs its answer as
``message.delta`` events whose text, joined, is the run's answer, on the responses and chat engines, whether
webhooks or polls tell that the model is done; a run without it logs none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import BOTH_COMPLETIONS, new_thread, wait_for_run

pytestmark = BOTH_COMPLETIONS

ANSWER = (
    "Sales by region last quarter: North 1,200, South 950, East 1,430 and West 1,010; "
    "East grew fastest, by about twelve percent on the quarter before."
)
COUNT = {"query": "SELECT COUNT(*) AS n FROM sales"}


@pytest.fixture(params=["responses", "chat"])
def engine(request: pytest.FixtureRequest, configure: Callable[..., None]) -> str:
    configure(THREADRUNNER_ENGINE=request.param)
    return str(request.param)


def _run(client: httpx.Client, purpose: str, **body: Any) -> dict[str, Any]:
    thread = new_thread(client, purpose)
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Sales by region?", **body})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["stream"] is body.get("stream", False)
    return wait_for_run(client, accepted.json()["id"])


def _events(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = client.get(f"/v1/runs/{run_id}/events", params={"after": events[-1]["seq"] if events else 0})
        assert page.status_code == 200, page.text
        if not page.json()["events"]:
            return events
        events += page.json()["events"]


def test_a_streamed_run_logs_deltas_that_join_into_its_answer(
    alice: httpx.Client, upstream: EmulatorServer, engine: str
) -> None:
    # Given a model that calls a tool, then answers in several words
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message(ANSWER))
    # When a run is created with "stream": true
    run = _run(alice, f"stream-{engine}", stream=True)
    # Then it completes as usual, says it streams, and its message.delta events join into its answer
    assert run["status"] == "completed", run
    assert run["stream"] is True and run["answer"] == ANSWER
    events = _events(alice, run["id"])
    deltas = [e for e in events if e["type"] == "message.delta"]
    assert deltas  # chunks that come within 100 ms of each other share an event
    assert "".join(d["data"]["text"] for d in deltas) == ANSWER
    assert {d["data"]["round"] for d in deltas} == {1}  # the answer's round (the tool round said nothing)
    # and each comes after its round's model.started, before the run's end
    types = [e["type"] for e in events]
    last_start = max(i for i, t in enumerate(types) if t == "model.started")
    assert all(last_start < events.index(d) < types.index("run.completed") for d in deltas)


def test_a_run_without_stream_logs_no_deltas(
    alice: httpx.Client, upstream: EmulatorServer, engine: str
) -> None:
    # Given a run created as before, without "stream"
    upstream.script(Plan.message(ANSWER))
    run = _run(alice, f"no-stream-{engine}")
    # Then it answers as before, and logs no message.delta
    assert run["status"] == "completed" and run["answer"] == ANSWER and run["stream"] is False
    assert not [e for e in _events(alice, run["id"]) if e["type"] == "message.delta"]
    # and the upstream was asked for nothing streamed
    assert not [e for e in upstream.exchanges if "event-stream" in e.response_headers.get("content-type", "")]
