"""The run lock and its queue on the thread item: one run at a time per thread (the upstream locks a
conversation while a response runs), the others waiting in line behind it (threadrunner.turns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.errors import ConflictError
from threadrunner.models.records import ThreadRecord
from threadrunner.stores._dynamo import (
    CONDITION_FAILED,
    TransactItem,
    WriteRetry,
    cancellation_reasons,
    is_condition_failure,
    write_if,
)
from threadrunner.stores.thread_items import expiry, is_live, thread_key, thread_not_found

# Conditional updates that lost a race re-read and try again, a few times.
_ATTEMPTS = 5
# Joining the queue: each loss means another run joined (or left) the line in between.
_QUEUE_ATTEMPTS = 20
# A thread that takes new runs: not being deleted, not past its expiry (TTL lags by days).
_LIVE = "attribute_exists(sk) AND attribute_not_exists(deleting_at) AND expires_at > :epoch"


class RunLock:
    """Part of ThreadStore (stores/threads.py), which provides the table, the retry and ``find``."""

    _table: Any
    _retry: WriteRetry

    def find(self, user_id: str, thread_id: str) -> ThreadRecord | None:
        raise NotImplementedError

    def acquire(
        self,
        thread: ThreadRecord,
        run_id: str,
        *,
        ttl_days: int | None = None,
        also: Sequence[TransactItem] = (),
    ) -> None:
        """Take the thread's run lock: the upstream allows one run per conversation at a time.

        ``also``: writes made in the same transaction (the run and its user message: services.runs), so the
        lock is never held by a run that was not written, nor a run written without it. ``ttl_days``: the run
        counts as activity (its TTL moves forward), in the same write. ConflictError while another run holds
        the lock; NotFoundError when the thread is being deleted or past its expiry (a run started there
        would outlive the cleanup)."""
        for _ in range(_ATTEMPTS):
            taken = self._change(
                thread,
                "SET active_run_id = :run",
                f"{_LIVE} AND attribute_not_exists(active_run_id)",
                {":run": run_id},
                ttl_days=ttl_days,
                also=also,
            )
            if taken:
                return
            current = self._live(thread)
            if current.active_run_id == run_id:
                return  # written by an earlier attempt of this same request, whose answer was lost
            if current.active_run_id:
                raise ConflictError(
                    f"thread {thread.id} already has an active run", active_run_id=current.active_run_id
                )
            # the active run ended in between: try again
        raise ConflictError(f"thread {thread.id} is changing hands; try again")

    def enqueue(
        self,
        thread: ThreadRecord,
        run_id: str,
        *,
        ttl_days: int | None = None,
        also: Sequence[TransactItem] = (),
    ) -> int | None:
        """Queue the run behind the active one; its position (1 = next), or None when the thread has no
        active run any more (the caller takes the lock instead). ``ttl_days`` and ``also`` as for
        ``acquire``; NotFoundError when the thread is being deleted or past its expiry.

        The write is conditional on the length of the line the caller saw, so the position is exact and
        concurrent enqueues each get their own place."""
        for _ in range(_QUEUE_ATTEMPTS):
            current = self._live(thread)
            if run_id in current.queue:  # written by an earlier attempt of this same request
                return current.queue.index(run_id) + 1
            if current.active_run_id is None or current.active_run_id == run_id:
                return None
            ahead = len(current.queue)
            line = "size(#q) = :ahead" if ahead else "(attribute_not_exists(#q) OR size(#q) = :ahead)"
            joined = self._change(
                thread,
                "SET #q = list_append(if_not_exists(#q, :empty), :runs)",
                f"{_LIVE} AND attribute_exists(active_run_id) AND {line}",
                {":empty": [], ":runs": [run_id], ":ahead": ahead},
                names={"#q": "queue"},
                ttl_days=ttl_days,
                also=also,
            )
            if joined:
                return ahead + 1
            # the line moved (or the lock was released): look again
        raise ConflictError(f"the queue of thread {thread.id} keeps changing; try again")

    def _live(self, thread: ThreadRecord) -> ThreadRecord:
        """The thread as it is now, if it still takes runs."""
        current = self.find(thread.user_id, thread.id)
        if current is None or not is_live(current, clock.epoch(clock.now())):
            raise thread_not_found(thread.id)
        return current

    def _change(
        self,
        thread: ThreadRecord,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        names: dict[str, str] | None = None,
        ttl_days: int | None,
        also: Sequence[TransactItem],
    ) -> bool:
        """One conditional update of the thread item (refreshing its TTL with ``ttl_days``), with ``also``
        in the same transaction; False when the thread's condition did not hold. One of ``also`` refused
        raises: its writer expected none of them to be (the run is new)."""
        now = clock.now()
        values = {**values, ":epoch": clock.epoch(now)}
        if ttl_days is not None:
            update += ", last_activity_at = :at, expires_at = :exp"
            values |= {":at": now.isoformat(), ":exp": expiry(now, ttl_days)}
        change: dict[str, Any] = {
            "Key": thread_key(thread.user_id, thread.id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            change["ExpressionAttributeNames"] = names
        if not also:
            return write_if(self._table.update_item, retry=self._retry, **change) is not None
        try:
            self._retry.write(
                self._table.meta.client.transact_write_items,
                TransactItems=[{"Update": {"TableName": self._table.name, **change}}, *also],
            )
        except ClientError as error:
            if is_condition_failure(error) and cancellation_reasons(error)[0] == CONDITION_FAILED:
                return False  # the thread's, the first item
            raise
        return True

    def dequeue(self, user_id: str, thread_id: str, run_id: str) -> bool:
        """Take a queued run out of the line; False when it is not queued (any more)."""
        for _ in range(_ATTEMPTS):
            thread = self.find(user_id, thread_id)
            if thread is None or run_id not in thread.queue:
                return False
            index = thread.queue.index(run_id)
            removed = write_if(
                self._table.update_item,
                retry=self._retry,
                Key=thread_key(user_id, thread_id),
                UpdateExpression=f"REMOVE #q[{index}]",
                ConditionExpression=f"#q[{index}] = :run",
                ExpressionAttributeNames={"#q": "queue"},
                ExpressionAttributeValues={":run": run_id},
            )
            if removed is not None:
                return True
            # the line moved: look again
        raise ConflictError(f"the queue of thread {thread_id} keeps changing; try again")

    def release(self, user_id: str, thread_id: str, run_id: str, ttl_days: int) -> str | None:
        """Give the lock back (only if this run holds it) and count the run as activity. With runs queued,
        the lock goes straight to the first of them, whose id is returned: the caller starts it."""
        for _ in range(_ATTEMPTS):
            thread = self.find(user_id, thread_id)
            if thread is None or thread.active_run_id != run_id:
                return None  # released already (a retried Finish run), or the thread is gone
            now = clock.now()
            values: dict[str, Any] = {":run": run_id, ":now": now.isoformat(), ":exp": expiry(now, ttl_days)}
            next_run = thread.queue[0] if thread.queue else None
            if next_run is not None:
                update = "SET active_run_id = :next, last_activity_at = :now, expires_at = :exp REMOVE #q[0]"
                condition = "active_run_id = :run AND #q[0] = :next"
                values[":next"] = next_run
            else:
                update = "REMOVE active_run_id SET last_activity_at = :now, expires_at = :exp"
                condition = "active_run_id = :run AND (attribute_not_exists(#q) OR size(#q) = :zero)"
                values[":zero"] = 0
            released = write_if(
                self._table.update_item,
                retry=self._retry,
                Key=thread_key(user_id, thread_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#q": "queue"},
                ExpressionAttributeValues=values,
            )
            if released is not None:
                return next_run
            # a run was queued or dequeued meanwhile: look again
        raise ConflictError(f"the queue of thread {thread_id} keeps changing; try again")
