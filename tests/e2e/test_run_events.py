"""A run's events over HTTP: every step's event once, in order (seq 1, 2, 3, ...), read page by page or
long-polled, resumed after a disconnect without a gap or a duplicate, and streamed as Server-Sent Events by the
local stack; another user's run is a 404 on each."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import BOTH_COMPLETIONS, new_thread, wait_for_run

COUNT = {"query": "SELECT COUNT(*) AS n FROM sales"}


def _start(client: httpx.Client, purpose: str, message: str = "How many sales?") -> str:
    thread = new_thread(client, purpose)
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": message})
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


def _all_events(client: httpx.Client, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    page = client.get(f"/v1/runs/{run_id}/events", params={"after": after})
    assert page.status_code == 200, page.text
    return list(page.json()["events"])


@BOTH_COMPLETIONS
def test_a_two_round_run_logs_every_step_once_in_order(alice: httpx.Client, upstream: EmulatorServer) -> None:
    # Given a run that calls a tool, then answers
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("Pomegranate sales: 42."))
    run_id = _start(alice, "events-two-rounds", "How many sales of quinces?")
    run = wait_for_run(alice, run_id)
    assert run["status"] == "completed", run
    # Then its events tell the whole story, each once, seq 1..N without a gap
    events = _all_events(alice, run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events] == [
        "run.queued",
        "run.started",
        "model.started",
        "model.completed",
        "tool_call.created",
        "tool_call.completed",
        "model.started",
        "model.completed",
        "run.completed",
    ]
    created, completed = events[4]["data"], events[5]["data"]
    assert created["name"] == completed["name"] == "query_database" and created["id"] == completed["id"]
    assert completed["is_error"] is False and completed["output_chars"] > 0
    assert events[3]["data"]["usage"]["total_tokens"] > 0
    # and no event carries the message, the answer or the tool's output
    logged = json.dumps(events)
    assert "quinces" not in logged and "Pomegranate" not in logged and "SELECT" not in logged


def test_a_reader_resuming_after_its_last_seq_gets_exactly_the_rest(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("42."))
    run_id = _start(alice, "events-resume")
    wait_for_run(alice, run_id)
    everything = _all_events(alice, run_id)
    # When a reader stops after each event and reconnects with the seq it saw last
    seen: list[int] = []
    after = 0
    while page := alice.get(f"/v1/runs/{run_id}/events", params={"after": after}).json()["events"]:
        seen.append(page[0]["seq"])
        after = page[0]["seq"]
    # Then it has read every event once
    assert seen == [e["seq"] for e in everything]
    assert alice.get(f"/v1/runs/{run_id}/events", params={"after": after}).json() == {
        "events": [],
        "next": after,
    }


def test_a_long_poll_waits_for_the_next_event_within_its_bounds(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given a run whose model never finishes, read up to its last event so far
    upstream.script(Plan.never_finishes())
    run_id = _start(alice, "events-long-poll")
    deadline = time.monotonic() + 10
    while not any(e["type"] == "model.started" for e in _all_events(alice, run_id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    last = _all_events(alice, run_id)[-1]["seq"]
    # When a client long-polls for 1.5 s and nothing happens, Then it gets nothing, after about that long
    started = time.monotonic()
    quiet = alice.get(f"/v1/runs/{run_id}/events", params={"after": last, "wait": 1.5}, timeout=30)
    waited = time.monotonic() - started
    assert quiet.json() == {"events": [], "next": last}
    assert 1.4 <= waited < 6, waited
    # When the run is cancelled during a long poll, Then the poll answers as soon as the events come
    with httpx.Client(base_url=str(alice.base_url), headers=alice.headers, timeout=30) as poller:
        alice.post(f"/v1/runs/{run_id}/cancel")
        for _ in range(3):  # a loaded machine may take more than one wait to end the run
            started = time.monotonic()
            woken = poller.get(f"/v1/runs/{run_id}/events", params={"after": last, "wait": 20})
            if woken.json()["events"]:
                break
    assert woken.json()["events"] and time.monotonic() - started < 19
    wait_for_run(alice, run_id)
    assert _all_events(alice, run_id)[-1]["type"] == "run.cancelled"
    # and an ended run answers at once, however long the wait asked for
    started = time.monotonic()
    end = _all_events(alice, run_id)[-1]["seq"]
    assert alice.get(f"/v1/runs/{run_id}/events", params={"after": end, "wait": 20}).json()["events"] == []
    assert time.monotonic() - started < 3


def test_the_local_stack_streams_the_events_as_server_sent_events(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("42."))
    run_id = _start(alice, "events-sse")
    frames: list[dict[str, str]] = []
    # When a client opens the stream as the run begins
    with alice.stream("GET", f"/v1/runs/{run_id}/events", params={"stream": "true"}, timeout=60) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in stream.iter_lines():
            if not line:
                if frame:
                    frames.append(frame)
                frame = {}
                continue
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                frame[name] = value
    # Then it gets every event as a frame (id = seq, event = type), and the stream ends with the run's end
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    assert frames[-1]["event"] == "run.completed"
    assert [f["event"] for f in frames] == [json.loads(f["data"])["type"] for f in frames]
    # and a client that reconnects with Last-Event-ID gets the rest only
    resumed = alice.get(
        f"/v1/runs/{run_id}/events", params={"stream": "true"}, headers={"Last-Event-ID": "6"}, timeout=30
    )
    ids = [line.split(": ")[1] for line in resumed.text.splitlines() if line.startswith("id: ")]
    assert ids == [str(seq) for seq in range(7, len(frames) + 1)]


def test_another_users_run_events_are_not_found_on_every_way_in(
    alice: httpx.Client, client_for: Callable[[str], httpx.Client], upstream: EmulatorServer
) -> None:
    upstream.script(Plan.message("mine"))
    run_id = _start(alice, "events-private")
    wait_for_run(alice, run_id)
    mallory = client_for("mallory")
    assert mallory.get(f"/v1/runs/{run_id}/events").status_code == 404
    assert mallory.get(f"/v1/runs/{run_id}/events", params={"wait": 1}).status_code == 404
    streamed = mallory.get(f"/v1/runs/{run_id}/events", params={"stream": "true"})
    assert streamed.status_code == 404 and streamed.json()["code"] == "not_found"
    # and bad parameters are a 422 naming them
    for params, field in (({"after": -1}, "after"), ({"wait": 21}, "wait")):
        refused = alice.get(f"/v1/runs/{run_id}/events", params=params)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text


@pytest.mark.parametrize("path", ["/v1/runs/{run_id}/events?stream=true"])
def test_the_stream_needs_a_token(local_stack: LocalStack, upstream: EmulatorServer, path: str) -> None:
    answer = httpx.get(local_stack.api_url + path.format(run_id="run_00000000000000000000000000"))
    assert answer.status_code == 401
