"""What a facade thread has beyond a threadrunner thread: its ``metadata``, and the user messages added with
``messages.create`` that wait for the thread's next run (which takes them as its message). One item per thread
in the threads table (``user_id`` / ``compat_thread#<thread id>``), deleted with the thread."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.stores._dynamo import TransactItem, from_item, to_item, write_if
from threadrunner.stores.thread_items import delete_prefixed

SK_PREFIX = "compat_thread#"
COMPAT_ASSISTANT = "compat"  # a facade thread's ThreadRecord.assistant: each run names its own assistant
MAX_WAITING = 32  # user messages waiting for a run, per thread


class WaitingMessage(DeferredModel):
    id: str
    created_at: int
    text: str
    metadata: dict[str, str] = Field(default_factory=dict)
    # its attachments as given ({file_id, tools}), and the thread's files they became: the run's inputs (the
    # code interpreter's) and the thread's documents (file_search)
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    file_ids: list[str] = Field(default_factory=list)
    document_ids: list[str] = Field(default_factory=list)


class CompatThread(DeferredModel):
    user_id: str
    thread_id: str
    metadata: dict[str, str] = Field(default_factory=dict)
    waiting: list[WaitingMessage] = Field(default_factory=list)
    version: int = 0  # every change adds one: a run takes exactly the messages it read


def compat_key(user_id: str, thread_id: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": SK_PREFIX + thread_id}


class CompatThreadStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def table(self) -> Any:
        """The threads table, where the compatible API keeps its items (assistants, files, threads' extras)."""
        return self._table

    def get(self, user_id: str, thread_id: str) -> CompatThread:
        item = self._table.get_item(Key=compat_key(user_id, thread_id), ConsistentRead=True).get("Item")
        return (
            CompatThread(user_id=user_id, thread_id=thread_id)
            if item is None
            else from_item(CompatThread, item)
        )

    def save(self, thread: CompatThread) -> bool:
        """Write the changed thread unless another request changed it since it was read (False: read again)."""
        changed = thread.model_copy(update={"version": thread.version + 1})
        written = write_if(
            self._table.put_item,
            Item=to_item(changed, **compat_key(thread.user_id, thread.thread_id)),
            ConditionExpression="attribute_not_exists(sk) OR version = :v",
            ExpressionAttributeValues={":v": thread.version},
        )
        return written is not None

    def take_waiting(self, thread: CompatThread) -> TransactItem:
        """The write, for a run's create transaction, that empties the waiting messages it read."""
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": to_item(
                    thread.model_copy(update={"waiting": [], "version": thread.version + 1}),
                    **compat_key(thread.user_id, thread.thread_id),
                ),
                "ConditionExpression": "attribute_not_exists(sk) OR version = :v",
                "ExpressionAttributeValues": {":v": thread.version},
            }
        }

    def delete(self, user_id: str, thread_id: str) -> None:
        self._table.delete_item(Key=compat_key(user_id, thread_id))

    def delete_all(self, user_id: str) -> None:
        """Every facade item of the user (threads' extras and assistants): deleting a user's data."""
        delete_prefixed(self._table, user_id, "compat_")
