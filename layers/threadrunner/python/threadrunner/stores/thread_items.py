"""Keys of the threads table's thread and slot items, and what makes a thread live."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from threadrunner import clock
from threadrunner.errors import NotFoundError
from threadrunner.models.records import ThreadRecord
from threadrunner.stores._dynamo import every_item
from threadrunner.stores.conditions import Key


def thread_key(user_id: str, thread_id: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"thread#{thread_id}"}


def slot_key(user_id: str, assistant: str, purpose: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"slot#{assistant}#{purpose}"}


def thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"thread {thread_id} not found")


def is_live(thread: ThreadRecord, now_epoch: int) -> bool:
    """Not being deleted, and not past its expiry (TTL can lag by days)."""
    return thread.deleting_at is None and thread.expires_at > now_epoch


def expiry(now: datetime, ttl_days: int) -> int:
    """The TTL attribute's value for a thread active at ``now``."""
    return clock.epoch(now + timedelta(days=ttl_days))


def delete_prefixed(table: Any, user_id: str, prefix: str) -> None:
    """Every item of the user's whose sort key starts with ``prefix`` (deleting a user's data)."""
    arguments = {
        "KeyConditionExpression": Key("user_id").eq(user_id) & Key("sk").begins_with(prefix),
        "ProjectionExpression": "user_id, sk",
    }
    with table.batch_writer() as batch:
        for item in every_item(table.query, **arguments):
            batch.delete_item(Key={"user_id": item["user_id"], "sk": item["sk"]})
