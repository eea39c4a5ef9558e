"""The run lock and its queue on the thread item, against moto: order, hand-over, races."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from threadrunner import clock
from threadrunner.errors import ConflictError, NotFoundError
from threadrunner.models.records import ThreadRecord
from threadrunner.stores.threads import ThreadStore, thread_key

from tests.support.aws import moto_tables

TTL_DAYS = 30


@pytest.fixture
def store() -> Iterator[ThreadStore]:
    with moto_tables() as tables:
        yield ThreadStore(tables["threads"])


def _thread(store: ThreadStore, purpose: str = "q") -> ThreadRecord:
    thread, _ = store.get_or_create(
        user_id="alice",
        assistant="a",
        purpose=purpose,
        engine="responses",
        max_age_hours=24,
        ttl_days=TTL_DAYS,
    )
    return thread


def test_enqueue_needs_an_active_run_and_returns_positions_in_order(store: ThreadStore) -> None:
    thread = _thread(store)
    assert store.enqueue(thread, "run_b") is None  # nobody holds the lock: take it instead
    store.acquire(thread, "run_a")
    assert [store.enqueue(thread, run) for run in ("run_b", "run_c", "run_d")] == [1, 2, 3]
    assert store.get("alice", thread.id).queue == ["run_b", "run_c", "run_d"]


def test_release_hands_the_lock_to_the_first_queued_run_then_frees_the_thread(store: ThreadStore) -> None:
    thread = _thread(store)
    store.acquire(thread, "run_a")
    store.enqueue(thread, "run_b")
    store.enqueue(thread, "run_c")
    assert store.release("alice", thread.id, "run_a", TTL_DAYS) == "run_b"
    assert (store.get("alice", thread.id).active_run_id, store.get("alice", thread.id).queue) == (
        "run_b",
        ["run_c"],
    )
    # a retried release by the run that no longer holds the lock changes nothing
    assert store.release("alice", thread.id, "run_a", TTL_DAYS) is None
    assert store.release("alice", thread.id, "run_b", TTL_DAYS) == "run_c"
    assert store.release("alice", thread.id, "run_c", TTL_DAYS) is None
    final = store.get("alice", thread.id)
    assert final.active_run_id is None and final.queue == []
    store.acquire(final, "run_e")  # free again


def test_dequeue_takes_one_run_out_of_the_line(store: ThreadStore) -> None:
    thread = _thread(store)
    store.acquire(thread, "run_a")
    for run in ("run_b", "run_c", "run_d"):
        store.enqueue(thread, run)
    assert store.dequeue("alice", thread.id, "run_c") is True
    assert store.dequeue("alice", thread.id, "run_c") is False
    assert store.get("alice", thread.id).queue == ["run_b", "run_d"]


def test_concurrent_enqueues_each_get_a_distinct_place(store: ThreadStore) -> None:
    thread = _thread(store)
    store.acquire(thread, "run_0")
    runs = [f"run_{n}" for n in range(1, 9)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        positions = dict(zip(runs, pool.map(lambda run: store.enqueue(thread, run), runs), strict=True))
    queue = store.get("alice", thread.id).queue
    assert sorted(queue) == sorted(runs)
    assert {run: queue.index(run) + 1 for run in runs} == positions


def test_release_races_with_enqueue_without_losing_the_newcomer(store: ThreadStore) -> None:
    thread = _thread(store)
    store.acquire(thread, "run_a")
    real_find = store.find

    def find_then_someone_enqueues(user_id: str, thread_id: str) -> ThreadRecord | None:
        seen = real_find(user_id, thread_id)
        if seen is not None and not seen.queue:
            store._table.update_item(
                Key=thread_key(user_id, thread_id),
                UpdateExpression="SET #q = :q",
                ExpressionAttributeNames={"#q": "queue"},
                ExpressionAttributeValues={":q": ["run_late"]},
            )
        return seen

    store.find = find_then_someone_enqueues  # type: ignore[method-assign]
    # When the queue fills between the read and the conditional write, release looks again
    assert store.release("alice", thread.id, "run_a", TTL_DAYS) == "run_late"
    assert real_find("alice", thread.id).active_run_id == "run_late"  # type: ignore[union-attr]


def test_a_deleting_thread_is_hidden_and_takes_no_new_queued_runs(store: ThreadStore) -> None:
    thread = _thread(store, "doomed")
    store.acquire(thread, "run_a")
    store.mark_deleting(thread)
    with pytest.raises(NotFoundError):  # the API answers as for a deleted thread
        store.enqueue(thread, "run_b")
    with pytest.raises(NotFoundError):
        store.get("alice", thread.id)
    assert store.find("alice", thread.id) is not None
    # and get-or-create moves on to a new thread for the key
    assert _thread(store, "doomed").id != thread.id


def test_list_live_pages_newest_first_skipping_expired_and_deleting(store: ThreadStore) -> None:
    ids = [_thread(store, f"p{n}").id for n in range(6)]
    store._table.update_item(
        Key=thread_key("alice", ids[1]),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": clock.epoch(clock.now()) - 1},
    )
    store.mark_deleting(store.get("alice", ids[4]))
    first, after = store.list_live("alice", limit=2)
    second, after2 = store.list_live("alice", limit=2, after=after)
    third, after3 = store.list_live("alice", limit=2, after=after2)
    assert [t.id for t in first + second + third] == [ids[5], ids[3], ids[2], ids[0]]
    assert after3 is None or store.list_live("alice", limit=2, after=after3) == ([], None)


def test_dequeue_gives_up_when_the_line_keeps_changing(store: ThreadStore) -> None:
    thread = _thread(store)
    store.acquire(thread, "run_a")
    store.enqueue(thread, "run_b")
    real_find = store.find

    def shuffled(user_id: str, thread_id: str) -> ThreadRecord | None:
        seen = real_find(user_id, thread_id)
        store._table.update_item(  # someone changes the line after every read
            Key=thread_key(user_id, thread_id),
            UpdateExpression="SET #q = list_append(:front, #q)",
            ExpressionAttributeNames={"#q": "queue"},
            ExpressionAttributeValues={":front": ["run_x"]},
        )
        return seen

    store.find = shuffled  # type: ignore[method-assign]
    with pytest.raises(ConflictError):
        store.dequeue("alice", thread.id, "run_b")
