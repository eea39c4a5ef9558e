"""Threads going away: TTL removals on the stream, the sweep, a user's data deletion, and an upstream that
will not delete (the record of what is left survives every failed attempt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from threadrunner import clock

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.lifecycle import leftovers, owned_ids, table, ttl_remove_record

UNREACHABLE_UPSTREAM = "http://127.0.0.1:9/v1"  # discard port: nothing listens, connections are refused


def _thread_with_history(client: httpx.Client, upstream: EmulatorServer, purpose: str) -> dict[str, Any]:
    """A thread with one completed run: an upstream conversation, a run, messages."""
    thread = new_thread(client, purpose)
    upstream.script(Plan.tool_calls([("get_table_schema", {})]), Plan.message(f"answer for {purpose}"))
    run = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": f"about {purpose}"}).json()
    assert wait_for_run(client, run["id"])["status"] == "completed"
    return thread


def _conversation_of(stack: LocalStack, user_id: str, thread_id: str) -> str:
    item = table(stack.table_names, "threads").get_item(Key={"user_id": user_id, "sk": f"thread#{thread_id}"})
    return str(item["Item"]["upstream_thread_id"])


def _deleted_conversations(upstream: EmulatorServer) -> list[str]:
    return [
        e.path.rsplit("/", 1)[1]
        for e in upstream.exchanges
        if e.method == "DELETE" and e.path.startswith("/v1/conversations/") and e.status == 200
    ]


def _left_of(stack: LocalStack, user_id: str, ids: set[str]) -> list[str]:
    return leftovers(
        stack.client("dynamodb"), stack.client("s3"), stack.bucket, stack.table_names, user_id, ids
    )


def _expire_by_ttl(stack: LocalStack, user_id: str, thread_id: str, sequence_number: str) -> dict[str, Any]:
    """Delete the thread item as TTL does, and return the stream record DynamoDB would send."""
    dynamodb = stack.client("dynamodb")
    key = {"user_id": {"S": user_id}, "sk": {"S": f"thread#{thread_id}"}}
    name = stack.table_names["threads"]
    old_image = dynamodb.get_item(TableName=name, Key=key)["Item"]
    dynamodb.delete_item(TableName=name, Key=key)
    arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    return ttl_remove_record(old_image, table_arn=arn, sequence_number=sequence_number)


def _invoke(stack: LocalStack, function: str, event: dict[str, Any]) -> Any:
    outcome = stack.lambdas.invoke(stack.lambdas.function_name(function), event)
    assert outcome.error is None, outcome.error
    return outcome.payload


def test_a_ttl_removal_on_the_stream_deletes_the_conversation_upstream_and_all_local_data(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    # Given a thread with history, and another one that must stay
    thread = _thread_with_history(alice, upstream, "ttl")
    kept = _thread_with_history(alice, upstream, "kept")
    conversation = _conversation_of(local_stack, "alice", thread["id"])
    ids = {thread["id"]} | {r["run_id"]["S"] for r in _runs_of(local_stack, thread["id"])}
    # When TTL removes the thread item and the stream delivers the REMOVE, next to a change that is not one
    removal = _expire_by_ttl(local_stack, "alice", thread["id"], sequence_number="2000")
    user_delete = ttl_remove_record(removal["dynamodb"]["OldImage"], table_arn="arn:x", by_ttl=False)
    response = _invoke(local_stack, "clean_up_thread", {"Records": [user_delete, removal]})
    # Then every record succeeded, the emulator saw the DELETE of that conversation only, nothing local is left
    assert response == {"batchItemFailures": []}
    assert _deleted_conversations(upstream) == [conversation]
    assert _left_of(local_stack, "nobody", ids) == []
    assert alice.get(f"/v1/threads/{kept['id']}/messages").json()["messages"]


def _runs_of(stack: LocalStack, thread_id: str) -> list[dict[str, Any]]:
    return [
        row
        for row in stack.client("dynamodb").scan(TableName=stack.table_names["runs"])["Items"]
        if row.get("thread_id", {}).get("S") == thread_id
    ]


def test_the_sweep_removes_an_expired_thread_that_ttl_has_not_removed_yet(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    erin = client_for("erin")
    expired = _thread_with_history(erin, upstream, "stale")
    fresh = _thread_with_history(erin, upstream, "fresh")
    conversation = _conversation_of(local_stack, "erin", expired["id"])
    ids = {expired["id"]} | {r["run_id"]["S"] for r in _runs_of(local_stack, expired["id"])}
    table(local_stack.table_names, "threads").update_item(
        Key={"user_id": "erin", "sk": f"thread#{expired['id']}"},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": clock.epoch(clock.now()) - 3600},
    )
    # When the sweep runs (what `threadrunner sweep` asks the local stack for)
    response = httpx.post(f"{local_stack.api_url}/_local/sweep", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["cleaned"] >= 1 and response.json()["failed"] == 0
    # Then the expired thread is gone everywhere, and the fresh one is untouched
    assert _deleted_conversations(upstream) == [conversation]
    assert _left_of(local_stack, "nobody", ids) == []
    assert erin.get(f"/v1/threads/{fresh['id']}").status_code == 200
    assert httpx.get(f"{local_stack.api_url}/_local/sweep").status_code == 405


def test_a_failing_upstream_delete_is_retried_and_given_up_without_losing_what_is_left(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
) -> None:
    frank = client_for("frank")
    thread = _thread_with_history(frank, upstream, "stubborn")
    conversation = _conversation_of(local_stack, "frank", thread["id"])
    never_used = new_thread(frank, "never-used")  # no conversation upstream: its cleanup cannot fail
    removals = [
        _expire_by_ttl(local_stack, "frank", thread["id"], sequence_number="3000"),
        _expire_by_ttl(local_stack, "frank", never_used["id"], sequence_number="3001"),
    ]
    # Given an upstream that cannot be reached
    configure(THREADRUNNER_OPENAI_BASE_URL=UNREACHABLE_UPSTREAM, THREADRUNNER_MAX_CLEANUP_ATTEMPTS="2")
    # When the stream delivers the removals and Lambda retries the batch
    for attempt in (1, 2):
        response = _invoke(local_stack, "clean_up_thread", {"Records": removals})
        # Then only the failed record is reported (Lambda retries it, then sends it to the dead-letter queue)
        assert response == {"batchItemFailures": [{"itemIdentifier": "3000"}]}
        assert _pending_cleanup(local_stack, "frank", never_used["id"]) is None
        record = _pending_cleanup(local_stack, "frank", thread["id"])
        assert record["attempts"] == attempt
        assert record["upstream_thread_id"] == conversation and "Upstream" in record["last_error"]
    # and the sweep, past the attempt limit, leaves it for a person instead of hammering the upstream
    report = _invoke(local_stack, "sweep_threads", {})
    assert report["given_up"] == 1 and report["cleaned"] == 0
    assert _pending_cleanup(local_stack, "frank", thread["id"])["attempts"] == 2
    # When the upstream is back and a person raises the limit, the sweep finishes the job
    configure(THREADRUNNER_OPENAI_BASE_URL=upstream.base_url, THREADRUNNER_MAX_CLEANUP_ATTEMPTS="5")
    assert _invoke(local_stack, "sweep_threads", {})["cleaned"] == 1
    assert conversation in _deleted_conversations(upstream)
    assert _pending_cleanup(local_stack, "frank", thread["id"]) is None
    assert frank.get(f"/v1/threads/{thread['id']}/messages").status_code == 404


def _pending_cleanup(stack: LocalStack, user_id: str, thread_id: str) -> dict[str, Any] | None:
    item = table(stack.table_names, "threads").get_item(
        Key={"user_id": user_id, "sk": f"cleanup#{thread_id}"}
    )
    return item.get("Item")


def test_deleting_a_users_data_leaves_nothing_of_theirs_and_everything_of_others(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    gina, hank = client_for("gina"), client_for("hank")
    mine = [_thread_with_history(gina, upstream, f"gdpr-{n}") for n in range(2)]
    theirs = _thread_with_history(hank, upstream, "gdpr-other")
    gina_conversations = {_conversation_of(local_stack, "gina", t["id"]) for t in mine}
    dynamodb = local_stack.client("dynamodb")
    gina_ids = owned_ids(dynamodb, local_stack.table_names, "gina")
    hank_before = sorted(_left_of(local_stack, "hank", owned_ids(dynamodb, local_stack.table_names, "hank")))
    assert hank_before
    # When gina asks for her data to be deleted
    assert gina.delete("/v1/users/me/data").status_code == 202
    # Then nothing of hers is left, here or upstream
    assert _left_of(local_stack, "gina", gina_ids) == []
    assert set(_deleted_conversations(upstream)) == gina_conversations
    assert gina.get("/v1/threads").json()["threads"] == []
    # and everything of hank's is as it was
    hank_after = sorted(_left_of(local_stack, "hank", owned_ids(dynamodb, local_stack.table_names, "hank")))
    assert hank_after == hank_before
    assert hank.get(f"/v1/threads/{theirs['id']}/messages").json()["messages"]
    # and asking again is harmless
    assert gina.delete("/v1/users/me/data").status_code == 202
