"""ThreadStore against moto: get-or-create, freshness, concurrency, the run lock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from threadrunner import clock
from threadrunner.errors import ConflictError, NotFoundError
from threadrunner.stores.threads import ThreadStore, thread_key

from tests.support.aws import moto_tables

KEY: dict[str, Any] = {
    "user_id": "alice",
    "assistant": "data-analyst",
    "purpose": "p",
    "engine": "responses",
    "max_age_hours": 24,
    "ttl_days": 30,
}


@pytest.fixture
def store() -> Iterator[ThreadStore]:
    with moto_tables() as tables:
        yield ThreadStore(tables["threads"])


def test_reuses_a_fresh_thread_and_starts_a_new_one_after_max_age(store: ThreadStore) -> None:
    first, created = store.get_or_create(**KEY)
    again, created_again = store.get_or_create(**KEY)
    assert created and not created_again and again.id == first.id
    # When its last activity is older than max age
    stale = (clock.now() - timedelta(hours=25)).isoformat()
    store._table.update_item(
        Key=thread_key("alice", first.id),
        UpdateExpression="SET last_activity_at = :t",
        ExpressionAttributeValues={":t": stale},
    )
    newer, created_newer = store.get_or_create(**KEY)
    assert created_newer and newer.id != first.id
    # the old one is left to expire, still readable until then
    assert store.get("alice", first.id).id == first.id


def test_concurrent_calls_agree_on_one_thread(store: ThreadStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.get_or_create(**KEY), range(16)))
    assert len({thread.id for thread, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_expired_threads_are_not_found_even_before_ttl_deletes_them(store: ThreadStore) -> None:
    thread, _ = store.get_or_create(**KEY)
    store._table.update_item(
        Key=thread_key("alice", thread.id),
        UpdateExpression="SET expires_at = :t",
        ExpressionAttributeValues={":t": clock.epoch(clock.now()) - 1},
    )
    with pytest.raises(NotFoundError):
        store.get("alice", thread.id)
    with pytest.raises(NotFoundError):
        store.get("bob", thread.id)


def test_one_run_at_a_time(store: ThreadStore) -> None:
    thread, _ = store.get_or_create(**KEY)
    store.acquire(thread, "run_1")
    with pytest.raises(ConflictError) as refused:
        store.acquire(thread, "run_2")
    assert refused.value.details["active_run_id"] == "run_1"
    store.release("alice", thread.id, "run_2", ttl_days=30)  # not the holder: no effect
    assert store.get("alice", thread.id).active_run_id == "run_1"
    store.release("alice", thread.id, "run_1", ttl_days=30)
    store.acquire(thread, "run_2")
    assert store.get("alice", thread.id).active_run_id == "run_2"


def test_a_thread_being_deleted_or_past_its_expiry_takes_no_run(store: ThreadStore) -> None:
    # Given a thread being deleted, and one past its expiry that TTL has not removed yet
    deleting, _ = store.get_or_create(**KEY)
    store.mark_deleting(deleting)
    expired, _ = store.get_or_create(**KEY | {"purpose": "old"})
    store._table.update_item(
        Key=thread_key("alice", expired.id),
        UpdateExpression="SET expires_at = :t",
        ExpressionAttributeValues={":t": clock.epoch(clock.now()) - 1},
    )
    # When a run asks for either, it is told the thread is not found, and the lock stays free
    for thread in (deleting, expired):
        with pytest.raises(NotFoundError):
            store.acquire(thread, "run_1", ttl_days=30)
        assert store.find("alice", thread.id).active_run_id is None  # type: ignore[union-attr]


def test_the_lock_and_the_runs_own_items_are_written_together_or_not_at_all(store: ThreadStore) -> None:
    thread, _ = store.get_or_create(**KEY)
    table = store._table.name

    def run_item(sk: str, condition: str = "attribute_not_exists(sk)") -> dict[str, Any]:
        return {
            "Put": {
                "TableName": table,
                "Item": {"user_id": "alice", "sk": sk},
                "ConditionExpression": condition,
            }
        }

    # When one of the run's own items cannot be written, the thread is not locked either
    with pytest.raises(ClientError):
        store.acquire(
            thread, "run_1", ttl_days=30, also=[run_item("run#1"), run_item("run#x", "attribute_exists(sk)")]
        )
    assert store.get("alice", thread.id).active_run_id is None
    assert "Item" not in store._table.get_item(Key={"user_id": "alice", "sk": "run#1"})
    # and when they can, both are written with the lock
    store.acquire(thread, "run_1", ttl_days=30, also=[run_item("run#1")])
    assert store.get("alice", thread.id).active_run_id == "run_1"
    assert "Item" in store._table.get_item(Key={"user_id": "alice", "sk": "run#1"})


def test_taking_the_lock_again_for_the_same_run_is_a_no_op(store: ThreadStore) -> None:
    # Given a lock taken, whose answer was lost (botocore sent the same write again)
    thread, _ = store.get_or_create(**KEY)
    store.acquire(thread, "run_1", ttl_days=30)
    # Then the same run taking it again is fine, another run is refused
    store.acquire(thread, "run_1", ttl_days=30)
    with pytest.raises(ConflictError):
        store.acquire(thread, "run_2", ttl_days=30)
    # and the same holds in the queue: the same run keeps its place
    assert store.enqueue(thread, "run_2", ttl_days=30) == 1
    assert store.enqueue(thread, "run_2", ttl_days=30) == 1
    assert store.get("alice", thread.id).queue == ["run_2"]
