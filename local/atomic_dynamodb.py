"""DynamoDB requests one at a time in moto, as atomic as the real service, and transactions that cost what
they touch.

Real DynamoDB evaluates a condition expression and applies the write as one step; moto handles each
request in the caller's thread, so two concurrent conditional writes can both see the old item and both
succeed. The thread store's get-or-create and queue rely on those conditions, so local mode and the tests
serialise DynamoDB requests (re-entrant: a request handled inside another one in the same thread is fine).

moto's ``transact_write_items`` deep-copies every table it touches before each transaction, to roll back a
cancelled one: a transaction's cost grows with everything the table holds (over the e2e suite, thousands of
run, event and tool-call items), so a 200-call round's events took minutes. Here a transaction keeps a copy of
the items it names only, and a cancelled one puts those back (with the stream records it wrote taken out), which
is the same rollback for what a transaction can change.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import moto.dynamodb.models as dynamodb_models
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_one_request_at_a_time = threading.RLock()
_original_process_request = BotocoreStubber.process_request
_original_transact_write_items = DynamoDBBackend.transact_write_items


def _process_request(self: BotocoreStubber, request: Any) -> Any:
    if "dynamodb." not in request.url:
        return _original_process_request(self, request)
    with _one_request_at_a_time:
        return _original_process_request(self, request)


class _TablesByReference:
    """``copy`` as moto's DynamoDB models see it: a table is "copied" as itself (its rollback is ours)."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@dataclass
class _SavedItem:
    table: Table
    hash_key: Any
    range_key: Any
    item: Any  # a copy of the item before the transaction, or None when there was none

    def put_back(self) -> None:
        items = self.table.items[self.hash_key] if self.range_key is not None else self.table.items
        key = self.range_key if self.range_key is not None else self.hash_key
        if self.item is None:
            items.pop(key, None)
        else:
            items[key] = self.item


def _saved_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_SavedItem]:
    saved = []
    for entry in transact_items:
        operation: dict[str, Any] = next(iter(entry.values()), {})
        table = backend.tables.get(str(operation.get("TableName")))
        if table is None:
            continue  # moto answers the error itself, before it writes anything
        named = operation.get("Key") or operation.get("Item") or {}
        key = {
            name: named[name]
            for name in (table.hash_key_attr, table.range_key_attr)
            if name and name in named
        }
        try:
            hash_key, range_key = backend.get_keys_value(table, key)
        except MockValidationException:
            continue  # an invalid key: moto refuses the transaction before it writes anything
        current = table.get_item(hash_key, range_key)
        saved.append(_SavedItem(table, hash_key, range_key, copy.deepcopy(current)))
    return saved


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    saved = _saved_items(self, transact_items)
    shards = {id(s.table): s.table.stream_shard for s in saved if s.table.stream_shard is not None}
    streams = [(shard, len(shard.items)) for shard in shards.values()]
    try:
        _original_transact_write_items(self, transact_items)
    except Exception:
        for item in reversed(saved):
            item.put_back()
        for shard, length in streams:
            del shard.items[length:]
        raise


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """While the block runs, moto handles DynamoDB requests one at a time, and a transaction copies only the
    items it names."""
    with (
        mock.patch.object(BotocoreStubber, "process_request", _process_request),
        mock.patch.object(DynamoDBBackend, "transact_write_items", _transact_write_items),
        mock.patch.object(dynamodb_models, "copy", _TablesByReference),
    ):
        yield
