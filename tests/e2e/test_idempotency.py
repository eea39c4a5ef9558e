"""Idempotency-Key on the creating POSTs (threads, runs, files) over HTTP on the local stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from threadrunner.services import threads as thread_service

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

HEADER = "Idempotency-Key"
THREAD = {"assistant": "data-analyst", "purpose": "idempotent"}


def _key() -> dict[str, str]:
    return {HEADER: str(uuid.uuid4())}


def _executions_of(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    listed = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)
    return [execution for execution in listed["executions"] if execution["name"] == run_id]


def test_a_repeated_thread_create_answers_the_first_answer_and_creates_nothing(alice: httpx.Client) -> None:
    # Given a thread created with a key
    key = _key()
    first = alice.post("/v1/threads", json={**THREAD, "purpose": f"idem-{uuid.uuid4().hex[:8]}"}, headers=key)
    assert first.status_code == 201, first.text
    # When the client sends the very same request again (a timeout, say)
    body = {**THREAD, "purpose": first.json()["purpose"]}
    repeat = alice.post("/v1/threads", json=body, headers=key)
    # Then it gets the first answer back, status included (201, where a new request would say 200)
    assert repeat.status_code == 201
    assert repeat.json() == first.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # and without the key the same body is an ordinary request: the current thread, 200
    plain = alice.post("/v1/threads", json=body)
    assert plain.status_code == 200 and plain.json()["id"] == first.json()["id"]


def test_a_repeated_run_create_starts_one_run_and_one_execution(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given a thread
    thread = new_thread(alice, "idempotent-run")
    key = _key()
    request = {"message": "How many customers are there?"}
    # When the run is posted twice with one key
    first = alice.post(f"/v1/threads/{thread['id']}/runs", json=request, headers=key)
    assert first.status_code == 202, first.text
    repeat = alice.post(f"/v1/threads/{thread['id']}/runs", json=request, headers=key)
    # Then the repeat answers the first run (not a 409 for a busy thread, not a second run)
    assert repeat.status_code == 202
    assert repeat.json() == first.json()
    run = wait_for_run(alice, first.json()["id"])
    assert run["status"] == "completed", run
    # and there is one run, one user message and one execution
    messages = alice.get(f"/v1/threads/{thread['id']}/messages", params={"limit": 100}).json()["messages"]
    assert [m["run_id"] for m in messages if m["role"] == "user"] == [run["id"]]
    assert len(_executions_of(local_stack, run["id"])) == 1
    assert alice.get(f"/v1/threads/{thread['id']}").json()["queued_run_ids"] == []


def test_a_repeated_file_create_makes_one_file(alice: httpx.Client) -> None:
    # Given a thread
    thread = new_thread(alice, "idempotent-file")
    key = _key()
    declared = {
        "thread_id": thread["id"],
        "filename": "sales.csv",
        "content_type": "text/csv",
        "size_bytes": 10,
    }
    # When the file is declared twice with one key
    first = alice.post("/v1/files", json=declared, headers=key)
    assert first.status_code == 201, first.text
    repeat = alice.post("/v1/files", json=declared, headers=key)
    # Then both answers are the same file, and the caller has one such file
    assert repeat.status_code == 201
    assert repeat.json()["id"] == first.json()["id"]
    assert repeat.json() == first.json()
    listed = [f for f in alice.get("/v1/files").json()["files"] if f["thread_id"] == thread["id"]]
    assert [f["id"] for f in listed] == [first.json()["id"]]


def test_the_same_key_with_another_body_or_route_is_a_422_naming_the_header(alice: httpx.Client) -> None:
    # Given a key already used for one thread
    key = _key()
    assert alice.post("/v1/threads", json={**THREAD, "purpose": "key-a"}, headers=key).status_code == 201
    # When it comes back with another body, and on another route
    other_body = alice.post("/v1/threads", json={**THREAD, "purpose": "key-b"}, headers=key)
    thread = new_thread(alice, "key-c")
    other_route = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hi"}, headers=key)
    # Then both are refused, naming the header, and nothing was created
    for response in (other_body, other_route):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_request"
        assert response.json()["field"] == HEADER
    purposes = [t["purpose"] for t in alice.get("/v1/threads", params={"limit": 100}).json()["threads"]]
    assert "key-b" not in purposes
    assert alice.get(f"/v1/threads/{thread['id']}").json()["active_run_id"] is None


def test_two_users_keys_never_collide(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer
) -> None:
    # Given two users who happen to pick the same key
    key = _key()
    alice, bob = client_for("alice"), client_for("bob")
    # When each creates a thread with it
    mine = alice.post("/v1/threads", json={**THREAD, "purpose": "shared-key"}, headers=key)
    theirs = bob.post("/v1/threads", json={**THREAD, "purpose": "shared-key"}, headers=key)
    # Then each gets their own thread, neither a replay of the other's
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert bob.get(f"/v1/threads/{mine.json()['id']}").status_code == 404


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "with space", "caf\u00e9"], ids=["empty", "too-long", "space", "non-ascii"]
)
def test_a_malformed_key_is_a_4xx_naming_the_header(alice: httpx.Client, key: str) -> None:
    # When the key is empty, too long or not printable ASCII
    response = alice.post(
        "/v1/threads", json={**THREAD, "purpose": "bad-key"}, headers={HEADER: key.encode("utf-8")}
    )
    # Then it is refused, naming the header, and no thread was created
    assert response.status_code == 422, response.text
    assert response.json()["field"] == HEADER
    purposes = [t["purpose"] for t in alice.get("/v1/threads", params={"limit": 100}).json()["threads"]]
    assert "bad-key" not in purposes


@dataclass
class Twin:
    """The same request as the one under way (same token, same key), sent while it is being handled."""

    headers: dict[str, str] = field(default_factory=dict)
    answers: list[httpx.Response] = field(default_factory=list)


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch, local_stack: LocalStack) -> Twin:
    sent = Twin()
    create = thread_service.get_or_create_thread

    def create_with_a_twin(ctx: Any, user_id: str, request: Any) -> Any:
        if not sent.answers:  # the first request is in progress: its twin arrives now
            with httpx.Client(base_url=local_stack.api_url, headers=sent.headers, timeout=30) as client:
                sent.answers.append(client.post("/v1/threads", json=request.model_dump(exclude_none=True)))
        return create(ctx, user_id, request)

    monkeypatch.setattr(thread_service, "get_or_create_thread", create_with_a_twin)
    return sent


def test_a_repeat_while_the_first_is_in_progress_is_a_409(alice: httpx.Client, twin: Twin) -> None:
    # Given a request whose twin arrives while it is still being handled
    key = _key()
    twin.headers.update({"Authorization": alice.headers["Authorization"], **key})
    body = {**THREAD, "purpose": "in-progress"}
    # When the first one runs
    first = alice.post("/v1/threads", json=body, headers=key)
    # Then the twin was told 409 (naming the header), and the first created the thread
    (answer,) = twin.answers
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "conflict" and answer.json()["field"] == HEADER
    assert first.status_code == 201, first.text
    # and once the first has answered, a repeat gets its answer
    again = alice.post("/v1/threads", json=body, headers=key)
    assert again.status_code == 201 and again.json() == first.json()


def test_a_refused_request_is_not_remembered_and_its_retry_runs(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    # Given a thread busy with a run that only ends when cancelled
    upstream.script(Plan.never_finishes(), Plan.message("the second answer"))
    thread = new_thread(alice, "busy-then-free")
    busy = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "How many customers?"})
    assert busy.status_code == 202, busy.text
    key = _key()
    request = {"message": "And how many orders?"}
    refused = alice.post(f"/v1/threads/{thread['id']}/runs", json=request, headers=key)
    assert refused.status_code == 409, refused.text
    # When the busy run has ended and the client retries with the same key
    alice.post(f"/v1/runs/{busy.json()['id']}/cancel")
    assert wait_for_run(alice, busy.json()["id"])["status"] == "cancelled"
    retried = alice.post(f"/v1/threads/{thread['id']}/runs", json=request, headers=key)
    # Then the retry runs (an error answer is not stored), and is not a replay
    assert retried.status_code == 202, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    run = wait_for_run(alice, retried.json()["id"])
    assert run["status"] == "completed" and run["answer"] == "the second answer"


def test_the_document_offers_the_header_on_the_three_creating_posts_only(alice: httpx.Client) -> None:
    document = alice.get("/v1/openapi.json").json()

    offered = sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if any(
            p["in"] == "header" and p["name"].lower() == HEADER.lower()
            for p in operation.get("parameters", [])
        )
    )
    assert offered == ["POST /v1/files", "POST /v1/threads", "POST /v1/threads/{thread_id}/runs"]


def test_deleting_my_data_deletes_my_stored_answers(client_for: Callable[[str], httpx.Client]) -> None:
    # Given a thread created with a key by a user
    carol = client_for(f"carol-{uuid.uuid4().hex[:8]}")
    key = _key()
    first = carol.post("/v1/threads", json={**THREAD, "purpose": "forget-me"}, headers=key)
    assert first.status_code == 201, first.text
    # When the user deletes all their data
    assert carol.delete("/v1/users/me/data").status_code == 202
    # Then the stored answer went with it: the same key is a new request, making a new thread
    again = carol.post("/v1/threads", json={**THREAD, "purpose": "forget-me"}, headers=key)
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
