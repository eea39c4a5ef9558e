"""Per-user limits over HTTP: runs per minute (429 with Retry-After), and input limits as 4xx naming the field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from threadrunner import clock
from threadrunner.stores import rate_limits

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import new_thread, wait_for_run


class FrozenMinute:
    """The rate limiter's clock, 50 s into a minute: the test never straddles two windows."""

    moment = datetime(2026, 11, 30, 9, 30, 50, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    epoch = staticmethod(clock.epoch)


def test_past_the_runs_per_minute_limit_a_run_is_a_429_with_retry_after_and_creates_nothing(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a limit of two runs per minute per user
    configure(THREADRUNNER_RUNS_PER_MINUTE="2")
    monkeypatch.setattr(rate_limits, "clock", FrozenMinute())
    upstream.script(Plan.never_finishes())
    alice, bob = client_for("alice-limited"), client_for("bob-limited")
    thread = new_thread(alice, "rate-limited")
    runs = f"/v1/threads/{thread['id']}/runs"
    # When alice posts three runs within the minute (the second and third queued behind the first)
    first = alice.post(runs, json={"message": "one"})
    second = alice.post(runs, json={"message": "two", "if_busy": "enqueue"})
    third = alice.post(runs, json={"message": "three", "if_busy": "enqueue"})
    # Then the first two are accepted and the third is refused until the next minute
    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    assert third.status_code == 429, third.text
    assert third.headers["Retry-After"] == "10"
    assert third.headers["content-type"] == "application/json"
    assert third.json()["code"] == "rate_limit_exceeded"
    assert "2 runs per minute" in third.json()["message"]
    # and nothing of the refused run exists: no message, not in the queue
    messages = alice.get(f"/v1/threads/{thread['id']}/messages").json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "two"]
    assert alice.get(f"/v1/threads/{thread['id']}").json()["queued_run_ids"] == [second.json()["id"]]
    # while another user is not limited by alice's runs
    assert (
        bob.post(f"/v1/threads/{new_thread(bob, 'other')['id']}/runs", json={"message": "hi"}).status_code
        == 202
    )
    for run in (first, second):
        alice.post(f"/v1/runs/{run.json()['id']}/cancel")
    assert wait_for_run(alice, first.json()["id"])["status"] == "cancelled"


def _max_message_length(client: httpx.Client) -> int:
    """The message limit as the API documents it (raised elsewhere for large messages; never lowered here)."""
    document = client.get("/v1/openapi.json").json()
    return int(document["components"]["schemas"]["CreateRunRequest"]["properties"]["message"]["maxLength"])


def test_every_input_limit_is_a_422_naming_the_field_and_creates_nothing(
    alice: httpx.Client, configure: Callable[..., None]
) -> None:
    # Given this environment's limits (two files per run, 1 KB per file, messages of 500 characters)
    configure(
        THREADRUNNER_MAX_FILES_PER_RUN="2",
        THREADRUNNER_MAX_FILE_BYTES="1024",
        THREADRUNNER_MAX_MESSAGE_CHARS="500",
    )
    thread = new_thread(alice, "limits")
    runs = f"/v1/threads/{thread['id']}/runs"
    file = {"thread_id": thread["id"], "filename": "a.csv", "content_type": "text/csv", "size_bytes": 10}
    too_many_files = [f"file_{n:026d}" for n in range(3)]
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/threads", {"assistant": "a" * 64}, "assistant"),
        ("POST", "/v1/threads", {"assistant": "data-analyst", "purpose": "p" * 101}, "purpose"),
        ("POST", "/v1/threads", {"assistant": "data-analyst", "max_age_hours": 0}, "max_age_hours"),
        ("POST", "/v1/threads", {"assistant": "data-analyst", "metadata": {"a": "b"}}, "metadata"),
        ("POST", runs, {"message": ""}, "message"),
        ("POST", runs, {"message": "x" * (_max_message_length(alice) + 1)}, "message"),
        ("POST", runs, {"message": "x" * 501}, "message"),  # under the API's ceiling, over the environment's
        ("POST", runs, {"message": "hi", "if_busy": "later"}, "if_busy"),
        ("POST", runs, {"message": "hi", "file_ids": too_many_files}, "file_ids"),
        ("POST", runs, {"message": "hi", "metadata": {}}, "metadata"),
        ("POST", "/v1/files", {**file, "size_bytes": 1025}, "size_bytes"),
        ("POST", "/v1/files", {**file, "size_bytes": 0}, "size_bytes"),
        ("POST", "/v1/files", {**file, "content_type": "application/x-sh"}, "content_type"),
        ("POST", "/v1/files", {**file, "filename": "../etc/passwd"}, "filename"),
        ("GET", "/v1/threads?limit=101", {}, "limit"),
        ("GET", f"/v1/threads/{thread['id']}/messages?after=bogus", {}, "after"),
        # found by fuzzing: a cursor that is not ASCII, a number read as a day, a week before year 1
        ("GET", "/v1/threads?after=%E6%84%9A", {}, "after"),
        ("GET", "/v1/usage?from=0.0", {}, "from"),
        ("GET", "/v1/usage?to=0001-01-01", {}, "to"),
    ]
    # When each limit is crossed
    for method, path, body, field in cases:
        response = alice.request(method, path, json=body if method == "POST" else None)
        # Then the answer is a 422 whose body names the field
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["field"] == field, (path, response.json())
        assert field in response.json()["message"]
    # and nothing was created: no run, no message, no file on the thread
    assert alice.get(f"/v1/threads/{thread['id']}").json()["active_run_id"] is None
    assert alice.get(f"/v1/threads/{thread['id']}/messages").json()["messages"] == []
    assert [f for f in alice.get("/v1/files").json()["files"] if f["thread_id"] == thread["id"]] == []


def test_a_retried_run_with_its_idempotency_key_is_never_refused_by_the_limit(
    alice: httpx.Client,
    upstream: EmulatorServer,
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a limit of one run per minute, used by a run posted with a key
    configure(THREADRUNNER_RUNS_PER_MINUTE="1")
    monkeypatch.setattr(rate_limits, "clock", FrozenMinute())
    upstream.script(Plan.never_finishes())
    runs = f"/v1/threads/{new_thread(alice, 'retried')['id']}/runs"
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = alice.post(runs, json={"message": "one"}, headers=key)
    assert first.status_code == 202, first.text
    # When the client retries it (its answer was lost), then posts a new run
    retried = alice.post(runs, json={"message": "one"}, headers=key)
    another = alice.post(runs, json={"message": "two", "if_busy": "enqueue"})
    # Then the retry is the first answer (it takes nothing from the limit), and only the new run is refused
    assert retried.status_code == 202 and retried.json()["id"] == first.json()["id"]
    assert another.status_code == 429 and another.json()["code"] == "rate_limit_exceeded"
    alice.post(f"/v1/runs/{first.json()['id']}/cancel")
    assert wait_for_run(alice, first.json()["id"])["status"] == "cancelled"
