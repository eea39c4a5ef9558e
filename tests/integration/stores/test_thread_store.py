"""ThreadStore against moto: get-or-create, freshness, concurrency, the run lock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
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
