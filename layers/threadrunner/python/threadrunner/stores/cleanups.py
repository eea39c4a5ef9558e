"""Pending cleanups: ``cleanup#<thread id>`` items in the threads table, one per thread being removed.

Written before any data is deleted and removed only when nothing is left, so a cleanup that fails (an upstream
that will not delete the conversation) is retried by the sweep, and after too many attempts still says what
remains. No TTL on them: they must outlive the thread they describe.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.models.records import PendingCleanup, ThreadRecord
from threadrunner.stores._dynamo import every_item, from_item, is_condition_failure, to_item
from threadrunner.stores.conditions import Attr, Key

ERROR_CHARS = 500


def pending_for(thread: ThreadRecord) -> PendingCleanup:
    """What is to be cleaned for ``thread``, asked for now (threadrunner.cleanup does it; the API records it)."""
    return PendingCleanup(
        user_id=thread.user_id,
        thread_id=thread.id,
        assistant=thread.assistant,
        purpose=thread.purpose,
        engine=thread.engine,
        upstream_thread_id=thread.upstream_thread_id,
        vector_store_id=thread.vector_store_id,
        requested_at=clock.now(),
    )


def cleanup_key(user_id: str, thread_id: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"cleanup#{thread_id}"}


class CleanupLedger:
    def __init__(self, table: Any) -> None:
        self._table = table

    def record(self, pending: PendingCleanup) -> PendingCleanup:
        """Record what is to be cleaned, once; a record already there (an earlier attempt) wins."""
        try:
            self._table.put_item(
                Item=to_item(pending, **cleanup_key(pending.user_id, pending.thread_id), kind="cleanup"),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            existing = self.get(pending.user_id, pending.thread_id)
            if existing is not None:
                return existing
        return pending

    def get(self, user_id: str, thread_id: str) -> PendingCleanup | None:
        item = self._table.get_item(Key=cleanup_key(user_id, thread_id), ConsistentRead=True).get("Item")
        return from_item(PendingCleanup, item) if item else None

    def failed(self, user_id: str, thread_id: str, error: str) -> None:
        self._table.update_item(
            Key=cleanup_key(user_id, thread_id),
            UpdateExpression="SET last_error = :e ADD attempts :one",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":e": error[:ERROR_CHARS], ":one": 1},
        )

    def done(self, user_id: str, thread_id: str) -> None:
        self._table.delete_item(Key=cleanup_key(user_id, thread_id))

    def for_user(self, user_id: str) -> list[PendingCleanup]:
        response = self._table.query(
            KeyConditionExpression=Key("user_id").eq(user_id) & Key("sk").begins_with("cleanup#"),
            ConsistentRead=True,
        )
        return [from_item(PendingCleanup, item) for item in response["Items"]]

    def pending(self) -> list[PendingCleanup]:
        """Every unfinished cleanup (a Scan, for the daily sweep)."""
        arguments: dict[str, Any] = {"FilterExpression": Attr("kind").eq("cleanup")}
        return [from_item(PendingCleanup, item) for item in every_item(self._table.scan, **arguments)]
