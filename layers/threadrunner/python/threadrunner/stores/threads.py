"""Threads and the per-(user, assistant, purpose) slot that says which thread is current."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from threadrunner import clock
from threadrunner.compat.thread_store import COMPAT_ASSISTANT, compat_key
from threadrunner.errors import ConflictError, NotFoundError
from threadrunner.models.records import ThreadRecord
from threadrunner.stores._dynamo import WRITE_RETRY, WriteRetry, every_item, from_item, to_item, write_if
from threadrunner.stores.conditions import Attr, Key
from threadrunner.stores.run_lock import RunLock
from threadrunner.stores.thread_items import (
    delete_prefixed,
    expiry,
    is_live,
    slot_key,
    thread_key,
    thread_not_found,
)

__all__ = ["ThreadStore", "slot_key", "thread_key"]


class ThreadStore(RunLock):
    """Thread items and slots; the run lock and its queue come from RunLock (stores/run_lock.py)."""

    def __init__(self, table: Any, *, retry: WriteRetry = WRITE_RETRY) -> None:
        self._table = table
        self._retry = retry

    def get(self, user_id: str, thread_id: str) -> ThreadRecord:
        """The caller's thread; someone else's, one past its expiry (TTL lags) or one being deleted is not
        found."""
        thread = self.find(user_id, thread_id)
        if thread is None or not is_live(thread, clock.epoch(clock.now())):
            raise thread_not_found(thread_id)
        return thread

    def find(self, user_id: str, thread_id: str) -> ThreadRecord | None:
        """The thread item as stored, expired or being deleted included (cleanup and DELETE need it)."""
        item = self._table.get_item(Key=thread_key(user_id, thread_id), ConsistentRead=True).get("Item")
        if item is None or item.get("kind") != "thread":
            return None
        return from_item(ThreadRecord, item)

    def list_live(
        self, user_id: str, *, limit: int, after: str | None = None
    ) -> tuple[list[ThreadRecord], str | None]:
        """Up to ``limit`` live threads, newest first (ids sort by creation time), and the id to continue
        after, if more may follow. Expired and deleting threads are skipped, so a page may need more reads."""
        now = clock.epoch(clock.now())
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("user_id").eq(user_id) & Key("sk").begins_with("thread#"),
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after:
            arguments["ExclusiveStartKey"] = thread_key(user_id, after)
        threads: list[ThreadRecord] = []
        while True:
            response = self._table.query(**arguments)
            for item in response["Items"]:
                thread = from_item(ThreadRecord, item)
                if is_live(thread, now):
                    threads.append(thread)
                    if len(threads) == limit:
                        return threads, thread.id
            if "LastEvaluatedKey" not in response:
                return threads, None
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def all_for_user(self, user_id: str) -> list[ThreadRecord]:
        """Every thread item of the user, expired and deleting ones included (for data deletion)."""
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("user_id").eq(user_id) & Key("sk").begins_with("thread#"),
            "ConsistentRead": True,
        }
        return [from_item(ThreadRecord, item) for item in every_item(self._table.query, **arguments)]

    def held(self) -> list[ThreadRecord]:
        """Threads with an active run or runs in their queue (a Scan, for the sweep's repair of locks)."""
        arguments: dict[str, Any] = {
            "FilterExpression": Attr("kind").eq("thread")
            & (Attr("active_run_id").exists() | Attr("queue").size().gt(0))
        }
        return [from_item(ThreadRecord, item) for item in every_item(self._table.scan, **arguments)]

    def expired(self, now: datetime) -> list[ThreadRecord]:
        """Threads past ``expires_at`` that DynamoDB has not removed yet (TTL can lag by days).

        A Scan: the sweep runs once a day and reads the table once."""
        arguments: dict[str, Any] = {
            "FilterExpression": Attr("kind").eq("thread") & Attr("expires_at").lte(clock.epoch(now))
        }
        return [from_item(ThreadRecord, item) for item in every_item(self._table.scan, **arguments)]

    def get_or_create(
        self, *, user_id: str, assistant: str, purpose: str, engine: str, max_age_hours: int, ttl_days: int
    ) -> tuple[ThreadRecord, bool]:
        """The current thread for the key while it is fresh, else a new one. Concurrent callers agree:
        the slot is written with a condition on what the caller saw, so only one new thread wins."""
        for _ in range(3):
            now = clock.now()
            slot = self._table.get_item(Key=slot_key(user_id, assistant, purpose), ConsistentRead=True).get(
                "Item"
            )
            seen_thread_id = slot["thread_id"] if slot else None
            if seen_thread_id:
                try:
                    current = self.get(user_id, seen_thread_id)
                    if current.is_fresh(now, max_age_hours):
                        return current, False
                except NotFoundError:
                    pass
            thread = ThreadRecord(
                id=clock.new_id("thr"),
                user_id=user_id,
                assistant=assistant,
                purpose=purpose,
                engine=engine,
                created_at=now,
                last_activity_at=now,
                expires_at=expiry(now, ttl_days),
            )
            if self._create(thread, seen_thread_id):
                return thread, True
        raise ConflictError("the thread is being created by another request; try again")

    def _create(self, thread: ThreadRecord, seen_thread_id: str | None) -> bool:
        slot = slot_key(thread.user_id, thread.assistant, thread.purpose)
        if seen_thread_id is None:
            condition, values = "attribute_not_exists(sk)", {}
        else:
            condition, values = "thread_id = :seen", {":seen": seen_thread_id}
        slot_put: dict[str, Any] = {
            "TableName": self._table.name,
            # No TTL on the slot: a fresh thread in daily use must outlive its first expiry date.
            "Item": {**slot, "kind": "slot", "thread_id": thread.id},
            "ConditionExpression": condition,
        }
        if values:
            slot_put["ExpressionAttributeValues"] = values
        thread_put = {
            "TableName": self._table.name,
            "Item": to_item(thread, sk=f"thread#{thread.id}", kind="thread"),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
        written = write_if(
            self._table.meta.client.transact_write_items,
            TransactItems=[{"Put": slot_put}, {"Put": thread_put}],
        )
        return written is not None

    def set_upstream_thread(self, thread: ThreadRecord, upstream_thread_id: str) -> bool:
        """Record the upstream id once; False when another writer recorded one first."""
        written = write_if(
            self._table.update_item,
            Key=thread_key(thread.user_id, thread.id),
            UpdateExpression="SET upstream_thread_id = :u",
            ConditionExpression="attribute_exists(sk) AND attribute_not_exists(upstream_thread_id)",
            ExpressionAttributeValues={":u": upstream_thread_id},
        )
        return written is not None

    def set_vector_store(self, user_id: str, thread_id: str, vector_store_id: str) -> bool:
        """Record the thread's documents' store once; False when another writer recorded one first (or the
        thread is being deleted, or gone)."""
        written = write_if(
            self._table.update_item,
            Key=thread_key(user_id, thread_id),
            UpdateExpression="SET vector_store_id = :v",
            ConditionExpression=(
                "attribute_exists(sk) AND attribute_not_exists(vector_store_id) AND attribute_not_exists(deleting_at)"
            ),
            ExpressionAttributeValues={":v": vector_store_id},
        )
        return written is not None

    def forget_upstream_thread(self, thread: ThreadRecord, upstream_thread_id: str) -> None:
        """The upstream lost it: the next run creates a new one (unless another writer moved on already)."""
        write_if(
            self._table.update_item,
            Key=thread_key(thread.user_id, thread.id),
            UpdateExpression="REMOVE upstream_thread_id",
            ConditionExpression="upstream_thread_id = :u",
            ExpressionAttributeValues={":u": upstream_thread_id},
        )

    def mark_deleting(self, thread: ThreadRecord) -> None:
        """Hide the thread from reads and new runs; threadrunner.cleanup removes it afterwards."""
        write_if(  # a thread already gone has nothing to hide
            self._table.update_item,
            Key=thread_key(thread.user_id, thread.id),
            UpdateExpression="SET deleting_at = if_not_exists(deleting_at, :now)",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":now": clock.now().isoformat()},
        )

    def delete(self, user_id: str, thread_id: str, *, assistant: str, purpose: str) -> None:
        """Remove the thread item (if TTL has not), its slot if the slot still points at it, and a thread of the
        Assistants-compatible API's extras (compat/thread_store.py)."""
        if assistant == COMPAT_ASSISTANT:
            self._table.delete_item(Key=compat_key(user_id, thread_id))
        self._table.delete_item(Key=thread_key(user_id, thread_id))
        write_if(  # unless the slot moved on to a newer thread, or is gone
            self._table.delete_item,
            Key=slot_key(user_id, assistant, purpose),
            ConditionExpression="thread_id = :id",
            ExpressionAttributeValues={":id": thread_id},
        )

    def delete_slots(self, user_id: str) -> None:
        """The user's slots (the last of their items once their threads are gone)."""
        delete_prefixed(self._table, user_id, "slot#")
