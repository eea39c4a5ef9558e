"""Which upstream vector store holds an assistant's knowledge documents, and which upstream file each
document is: one item per (assistant, environment, engine) in the runs table, ``run_id = knowledge#<name>``,
``sk = vector_store#<environment>#<engine>``. Written by the knowledge sync (threadrunner/knowledge_sync.py)
after each change upstream, so a sync that stops half-way starts again from what is recorded; read by the
engine when it creates a response (the ``file_search`` tool's ``vector_store_ids``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import Record
from threadrunner.stores._dynamo import from_item, to_item


class SyncedDocument(DeferredModel):
    """One document as it is upstream: the hash of the bytes uploaded, and the file they became."""

    content_hash: str
    upstream_file_id: str
    filename: str


class KnowledgeStoreRecord(Record):
    assistant: str
    environment: str
    engine: str
    vector_store_id: str
    documents: dict[str, SyncedDocument] = Field(default_factory=dict)  # source (path or s3://) -> upload
    synced_at: datetime


def _key(environment: str, engine: str, assistant: str) -> dict[str, str]:
    return {"run_id": f"knowledge#{assistant}", "sk": f"vector_store#{environment}#{engine}"}


class KnowledgeStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, environment: str, engine: str, assistant: str) -> KnowledgeStoreRecord | None:
        item = self._table.get_item(Key=_key(environment, engine, assistant), ConsistentRead=True).get("Item")
        return None if item is None else from_item(KnowledgeStoreRecord, item)

    def put(self, record: KnowledgeStoreRecord) -> None:
        """One writer per environment (the sync at deploy time, or the local stack's start)."""
        key = _key(record.environment, record.engine, record.assistant)
        self._table.put_item(Item=to_item(record, **key, kind="knowledge_store"))

    def delete(self, environment: str, engine: str, assistant: str) -> None:
        self._table.delete_item(Key=_key(environment, engine, assistant))
