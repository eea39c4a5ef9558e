"""Threads holding a run lock or a line of queued runs: what the sweep checks is still right
(threadrunner.run_repair). Apart from ThreadStore, which takes and releases the locks, since only the sweep
reads the whole table this way."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr

from threadrunner.models.records import ThreadRecord
from threadrunner.stores._dynamo import from_item


class ThreadLocks:
    def __init__(self, table: Any) -> None:
        self._table = table

    def held(self) -> list[ThreadRecord]:
        """Threads with an active run or runs in their queue. A Scan, like ThreadStore.expired: the sweep
        reads the table once per run."""
        arguments: dict[str, Any] = {
            "FilterExpression": Attr("kind").eq("thread")
            & (Attr("active_run_id").exists() | Attr("queue").size().gt(0))
        }
        threads: list[ThreadRecord] = []
        while True:
            response = self._table.scan(**arguments)
            threads.extend(from_item(ThreadRecord, item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return threads
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
