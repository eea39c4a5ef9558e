"""Threads over HTTP: reuse within max age, one thread under concurrency, listing, history, deletion."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from threadrunner import clock

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.lifecycle import leftovers, owned_ids, table


def _set_thread(stack: LocalStack, user_id: str, thread_id: str, **fields: object) -> None:
    """Change a thread item behind the API's back (age it, expire it), as time would."""
    threads = table(stack.table_names, "threads")
    names = {f"#{k}": k for k in fields}
    threads.update_item(
        Key={"user_id": user_id, "sk": f"thread#{thread_id}"},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{k}": v for k, v in fields.items()},
    )


def _ask(client: httpx.Client, thread_id: str, message: str, **options: str) -> dict:  # type: ignore[type-arg]
    response = client.post(f"/v1/threads/{thread_id}/runs", json={"message": message, **options})
    assert response.status_code == 202, response.text
    return dict(response.json())


def _wait_until_in_progress(client: httpx.Client, run_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/v1/runs/{run_id}").json()["status"] != "in_progress":
        assert time.monotonic() < deadline, f"run {run_id} did not start"
        time.sleep(0.05)


def test_a_thread_is_reused_within_its_max_age_and_replaced_after_it(
    alice: httpx.Client, local_stack: LocalStack
) -> None:
    body = {"assistant": "data-analyst", "purpose": "max-age", "max_age_hours": 2}
    first = alice.post("/v1/threads", json=body)
    assert first.status_code == 201
    # Given its last activity an hour ago: still fresh for a 2-hour max age
    hour_ago = (clock.now() - timedelta(hours=1)).isoformat()
    _set_thread(local_stack, "alice", first.json()["id"], last_activity_at=hour_ago)
    again = alice.post("/v1/threads", json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # When the caller allows only one hour, the same thread is too old: a new one starts
    newer = alice.post("/v1/threads", json={**body, "max_age_hours": 1})
    assert newer.status_code == 201 and newer.json()["id"] != first.json()["id"]
    # and from then on the new one is current; the old one is left to expire, still readable until then
    assert alice.post("/v1/threads", json=body).json()["id"] == newer.json()["id"]
    assert alice.get(f"/v1/threads/{first.json()['id']}").status_code == 200


def test_a_run_refreshes_last_activity_and_pushes_expiry(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    thread = new_thread(alice, "refresh")
    # Given a thread last used an hour ago
    hour_ago = clock.now() - timedelta(hours=1)
    _set_thread(
        local_stack,
        "alice",
        thread["id"],
        last_activity_at=hour_ago.isoformat(),
        expires_at=clock.epoch(hour_ago) + 86_400,
    )
    thread = alice.get(f"/v1/threads/{thread['id']}").json()
    upstream.script(Plan.message("hi"))
    wait_for_run(alice, _ask(alice, thread["id"], "hello")["id"])
    after = alice.get(f"/v1/threads/{thread['id']}").json()
    assert after["last_activity_at"] > thread["last_activity_at"]
    assert after["expires_at"] > thread["expires_at"]


def test_concurrent_get_or_create_gives_one_thread(alice: httpx.Client, local_stack: LocalStack) -> None:
    body = {"assistant": "data-analyst", "purpose": "stampede"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: alice.post("/v1/threads", json=body), range(8)))
    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert [r.status_code for r in responses].count(201) == 1
    items = table(local_stack.table_names, "threads").scan()["Items"]
    mine = [i for i in items if i["user_id"] == "alice" and i.get("purpose") == "stampede"]
    assert len(mine) == 1


def test_threads_are_listed_newest_first_page_by_page_without_expired_ones(
    client_for: Callable[[str], httpx.Client], local_stack: LocalStack, upstream: EmulatorServer
) -> None:
    user = f"carol-{uuid.uuid4().hex[:8]}"  # a user of this test alone: no other test's threads in the list
    carol = client_for(user)
    ids = [new_thread(carol, f"list-{n}")["id"] for n in range(5)]
    _set_thread(local_stack, user, ids[2], expires_at=clock.epoch(clock.now()) - 60)  # TTL not yet run
    pages, after = [], None
    while True:
        response = carol.get("/v1/threads", params={"limit": 2, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        pages.append([t["id"] for t in response.json()["threads"]])
        after = response.json()["next"]
        if after is None:
            break
    assert [thread_id for page in pages for thread_id in page] == [ids[4], ids[3], ids[1], ids[0]]
    assert all(len(page) <= 2 for page in pages)
    assert carol.get("/v1/threads", params={"after": "garbage"}).status_code == 422
    assert client_for("dave").get("/v1/threads").json() == {"threads": [], "next": None}


def test_history_is_complete_ordered_and_paginated_after_three_runs(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    thread = new_thread(alice, "history")
    long_answer = "A long answer. " * 3000  # about 45 KB: stored in S3, not in DynamoDB
    upstream.script(
        Plan.tool_calls([("get_table_schema", {})]),
        Plan.message("one"),
        Plan.message("two"),
        Plan.message(long_answer),
    )
    for question in ("first?", "second?", "third?"):
        run = wait_for_run(alice, _ask(alice, thread["id"], question)["id"])
        assert run["status"] == "completed", run
    messages, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = alice.get(f"/v1/threads/{thread['id']}/messages", params=params)
        assert page.status_code == 200, page.text
        assert len(page.json()["messages"]) <= 2
        messages += page.json()["messages"]
        after = page.json()["next"]
        if after is None:
            break
    assert [(m["role"], m["content"]) for m in messages if m["role"] != "tool"] == [
        ("user", "first?"),
        ("assistant", "one"),
        ("user", "second?"),
        ("assistant", "two"),
        ("user", "third?"),
        ("assistant", long_answer),
    ]
    tools = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call"]["name"] for m in tools] == ["get_table_schema"]
    assert messages.index(tools[0]) == 1  # between the first question and its answer
    offloaded = local_stack.client("s3").list_objects_v2(
        Bucket=local_stack.bucket, Prefix=f"messages/{thread['id']}/"
    )
    assert [o["Key"].rsplit("/", 1)[1] for o in offloaded.get("Contents", [])] == [messages[-1]["id"]]
    assert alice.get(f"/v1/threads/{thread['id']}/messages", params={"after": "nope"}).status_code == 422


def test_delete_is_refused_while_a_run_is_active_unless_forced_and_is_idempotent(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    thread = new_thread(alice, "delete-me")
    upstream.script(Plan.never_finishes())
    run = _ask(alice, thread["id"], "take your time")
    _wait_until_in_progress(alice, run["id"])  # the conversation exists upstream
    refused = alice.delete(f"/v1/threads/{thread['id']}")
    assert refused.status_code == 409 and refused.json()["active_run_id"] == run["id"]
    # When forced, the run is cancelled and the thread goes
    ids = owned_ids(local_stack.client("dynamodb"), local_stack.table_names, "alice") & {
        thread["id"],
        run["id"],
    }
    forced = alice.delete(f"/v1/threads/{thread['id']}", params={"force": "true"})
    assert forced.status_code == 202
    assert alice.get(f"/v1/threads/{thread['id']}").status_code == 404
    assert alice.delete(f"/v1/threads/{thread['id']}").status_code in (202, 204)
    conversation_deletes = [
        e for e in upstream.exchanges if e.method == "DELETE" and "/conversations/" in e.path
    ]
    assert len(conversation_deletes) == 1
    assert any(e.path.endswith("/cancel") for e in upstream.exchanges)
    left = leftovers(
        local_stack.client("dynamodb"),
        local_stack.client("s3"),
        local_stack.bucket,
        local_stack.table_names,
        "nobody",
        ids,
    )
    assert left == []
    assert thread["id"] not in [t["id"] for t in alice.get("/v1/threads").json()["threads"]]
