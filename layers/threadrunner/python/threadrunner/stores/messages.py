"""A thread's own message log: every user message, tool call summary and assistant answer, in order.

It is what survives when the upstream forgets a conversation, and what the ``chat`` engine and the fallback
replay. Bodies above ``inline_bytes`` are stored in S3 under ``messages/<thread id>/<message id>``.
"""

from __future__ import annotations

from typing import Any

from threadrunner.models.records import MessageRecord
from threadrunner.stores._dynamo import TransactItem, every_item, from_item, to_item
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.conditions import Key

MESSAGES_PREFIX = "messages/"


def message_id(run_id: str, position: int) -> str:
    """``<run id>.<nnnn>``: position 0 is the run's user message, then its tool calls, then the answer."""
    return f"{run_id}.{position:04d}"


def messages_prefix(thread_id: str) -> str:
    return f"{MESSAGES_PREFIX}{thread_id}/"


class MessageStore:
    def __init__(self, table: Any, blobs: BlobStore, *, inline_bytes: int) -> None:
        self._table = table
        self._blobs = blobs
        self._inline_bytes = inline_bytes

    def add(self, message: MessageRecord) -> None:
        """Write one entry; writing the same id again (a retried step) stores the same thing."""
        self._table.put_item(Item=self.new_entry(message)["Item"])

    def new_entry(self, message: MessageRecord) -> TransactItem:
        """The ``Put`` of one entry, for a transaction (the user message of a new run: services.runs). A
        long body goes to S3 now: if the transaction fails, the orphaned body goes with the thread's log."""
        content = message.content or ""
        if len(content.encode()) > self._inline_bytes:
            key = f"{messages_prefix(message.thread_id)}{message.message_id}"
            self._blobs.put_text(key, content)
            message = message.model_copy(update={"content": None, "content_key": key})
        return {"TableName": self._table.name, "Item": to_item(message)}

    def keep_run_message(self, thread_id: str, run_id: str, text: str) -> str:
        """A run's message as it was sent, too long for the run item; returns its key (deleted with the
        thread's log). The log's own entry may change (the chat engine inlines files into it)."""
        key = f"{messages_prefix(thread_id)}{run_id}.message"
        self._blobs.put_text(key, text)
        return key

    def keep_tool_output(self, thread_id: str, run_id: str, call_id: str, text: str) -> str:
        """A tool's whole output, which the model gets cut short; returns its key (deleted with the thread's
        log), kept by reference in the tool-call ledger."""
        key = f"{messages_prefix(thread_id)}{run_id}.tool-{call_id}.json"
        self._blobs.put_text(key, text)
        return key

    def run_message(self, key: str) -> str:
        return self._blobs.get_text(key)

    def get(self, thread_id: str, message_id: str) -> MessageRecord | None:
        item = self._table.get_item(
            Key={"thread_id": thread_id, "message_id": message_id}, ConsistentRead=True
        ).get("Item")
        return None if item is None else self._with_body(from_item(MessageRecord, item))

    def page(
        self, thread_id: str, *, limit: int, after: str | None = None
    ) -> tuple[list[MessageRecord], bool]:
        """Up to ``limit`` entries after message id ``after``, oldest first, and whether more follow."""
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("thread_id").eq(thread_id),
            "ConsistentRead": True,
            "Limit": limit + 1,  # one more than asked: tells whether there is a next page
        }
        if after:
            arguments["ExclusiveStartKey"] = {"thread_id": thread_id, "message_id": after}
        items = self._table.query(**arguments)["Items"]
        messages = [self._with_body(from_item(MessageRecord, item)) for item in items[:limit]]
        return messages, len(items) > limit

    def delete_thread(self, thread_id: str) -> int:
        """Delete the thread's whole log (S3 bodies first, so no object outlives its entry)."""
        self._blobs.delete_prefix(messages_prefix(thread_id))
        deleted = 0
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("thread_id").eq(thread_id),
            "ProjectionExpression": "thread_id, message_id",
        }
        with self._table.batch_writer() as batch:
            for item in every_item(self._table.query, **arguments):
                batch.delete_item(Key={"thread_id": item["thread_id"], "message_id": item["message_id"]})
                deleted += 1
        return deleted

    def _with_body(self, message: MessageRecord) -> MessageRecord:
        if message.content is None and message.content_key:
            return message.model_copy(update={"content": self._blobs.get_text(message.content_key)})
        return message
