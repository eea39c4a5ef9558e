"""Threads and the per-(user, assistant, purpose) slot that says which thread is current."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.errors import ConflictError, NotFoundError
from threadrunner.models.records import ThreadRecord
from threadrunner.stores._dynamo import from_item, is_condition_failure, to_item


def thread_key(user_id: str, thread_id: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"thread#{thread_id}"}


def slot_key(user_id: str, assistant: str, purpose: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"slot#{assistant}#{purpose}"}


class ThreadStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, user_id: str, thread_id: str) -> ThreadRecord:
        """The caller's thread; someone else's, or one past its expiry (TTL lags), is not found."""
        item = self._table.get_item(Key=thread_key(user_id, thread_id), ConsistentRead=True).get("Item")
        if item is None or item.get("kind") != "thread":
            raise NotFoundError(f"thread {thread_id} not found")
        thread = from_item(ThreadRecord, item)
        if thread.expires_at <= clock.epoch(clock.now()):
            raise NotFoundError(f"thread {thread_id} not found")
        return thread

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
                expires_at=_expiry(now, ttl_days),
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
        try:
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {"Put": slot_put},
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": to_item(thread, sk=f"thread#{thread.id}", kind="thread"),
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def set_upstream_thread(self, thread: ThreadRecord, upstream_thread_id: str) -> bool:
        """Record the upstream id once; False when another writer recorded one first."""
        try:
            self._table.update_item(
                Key=thread_key(thread.user_id, thread.id),
                UpdateExpression="SET upstream_thread_id = :u",
                ConditionExpression="attribute_exists(sk) AND attribute_not_exists(upstream_thread_id)",
                ExpressionAttributeValues={":u": upstream_thread_id},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def acquire(self, thread: ThreadRecord, run_id: str) -> None:
        """Take the thread's run lock: the upstream allows one run per conversation at a time."""
        try:
            self._table.update_item(
                Key=thread_key(thread.user_id, thread.id),
                UpdateExpression="SET active_run_id = :run",
                ConditionExpression="attribute_exists(sk) AND attribute_not_exists(active_run_id)",
                ExpressionAttributeValues={":run": run_id},
            )
        except ClientError as error:
            if is_condition_failure(error):
                current = self.get(thread.user_id, thread.id)
                raise ConflictError(
                    f"thread {thread.id} already has an active run", active_run_id=current.active_run_id or ""
                ) from error
            raise

    def release(self, user_id: str, thread_id: str, run_id: str, ttl_days: int) -> None:
        """Give the lock back (only if this run holds it) and count the run as activity."""
        now = clock.now()
        try:
            self._table.update_item(
                Key=thread_key(user_id, thread_id),
                UpdateExpression="REMOVE active_run_id SET last_activity_at = :now, expires_at = :exp",
                ConditionExpression="attribute_exists(sk) AND active_run_id = :run",
                ExpressionAttributeValues={
                    ":run": run_id,
                    ":now": now.isoformat(),
                    ":exp": _expiry(now, ttl_days),
                },
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def touch(self, user_id: str, thread_id: str, ttl_days: int) -> None:
        """Refresh last activity and push the TTL forward (on every run)."""
        now = clock.now()
        self._table.update_item(
            Key=thread_key(user_id, thread_id),
            UpdateExpression="SET last_activity_at = :now, expires_at = :exp",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":now": now.isoformat(), ":exp": _expiry(now, ttl_days)},
        )


def _expiry(now: datetime, ttl_days: int) -> int:
    return clock.epoch(now + timedelta(days=ttl_days))
