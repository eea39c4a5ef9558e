"""Keys of the threads table's thread and slot items, and what makes a thread live."""

from __future__ import annotations

from datetime import datetime, timedelta

from threadrunner import clock
from threadrunner.errors import NotFoundError
from threadrunner.models.records import ThreadRecord


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
