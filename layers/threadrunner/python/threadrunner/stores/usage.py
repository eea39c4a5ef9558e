"""Usage per user per UTC day: ``usage#<yyyy-mm-dd>`` items beside the user's threads (threads table,
partition ``user_id``), counted with atomic ADDs when a run ends, expired by TTL after the retention."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from threadrunner import clock
from threadrunner.models.records import Usage
from threadrunner.models.usage import DailyUsage
from threadrunner.stores._dynamo import every_item, from_item
from threadrunner.stores.conditions import Key

USAGE_PREFIX = "usage#"
_COUNTERS = ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")


def usage_key(user_id: str, day: date) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"{USAGE_PREFIX}{day.isoformat()}"}


class UsageStore:
    def __init__(self, table: Any, *, retention_days: int = 400) -> None:
        self._table = table
        self._retention_days = retention_days

    @property
    def table_name(self) -> str:
        return str(self._table.name)

    def counter_update(self, user_id: str, day: date, usage: Usage, cost_usd: float | None) -> dict[str, Any]:
        """The ``Update`` of a TransactWriteItems that adds one ended run to the user's day (the caller pairs
        it with the run's own write, so a retried Finish run counts nothing twice)."""
        values: dict[str, Any] = {f":{name}": getattr(usage, name) for name in _COUNTERS}
        adds = [f"{name} :{name}" for name in _COUNTERS] + ["runs :one"]
        values[":one"] = 1
        if cost_usd is None:
            adds.append("unpriced_runs :one")
        else:
            adds.append("cost_usd :cost")
            values[":cost"] = Decimal(str(cost_usd))
        expires = clock.epoch(clock.now()) + self._retention_days * 86_400
        values |= {":kind": "usage", ":day": day.isoformat(), ":expires": expires}
        return {
            "TableName": self.table_name,
            "Key": usage_key(user_id, day),
            "UpdateExpression": "SET kind = :kind, #day = :day, expires_at = :expires ADD " + ", ".join(adds),
            "ExpressionAttributeNames": {"#day": "day"},
            "ExpressionAttributeValues": values,
        }

    def add(self, user_id: str, day: date, usage: Usage, cost_usd: float | None) -> None:
        """Count one run outside a transaction (runs that end before they started: nothing to guard)."""
        update = self.counter_update(user_id, day, usage, cost_usd)
        del update["TableName"]
        self._table.update_item(**update)

    def day(self, user_id: str, day: date) -> DailyUsage:
        item = self._table.get_item(Key=usage_key(user_id, day), ConsistentRead=True).get("Item")
        return from_item(DailyUsage, item) if item else DailyUsage(day=day)

    def between(self, user_id: str, first: date, last: date) -> list[DailyUsage]:
        """Every day from ``first`` to ``last`` (both included), days without runs as zeros."""
        response = self._table.query(
            KeyConditionExpression=Key("user_id").eq(user_id)
            & Key("sk").between(f"{USAGE_PREFIX}{first.isoformat()}", f"{USAGE_PREFIX}{last.isoformat()}"),
            ConsistentRead=True,
        )
        found = {item["day"]: from_item(DailyUsage, item) for item in response["Items"]}
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [found.get(day.isoformat(), DailyUsage(day=day)) for day in days]

    def delete_all(self, user_id: str) -> None:
        """Every usage item of the user (their data is being deleted)."""
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("user_id").eq(user_id) & Key("sk").begins_with(USAGE_PREFIX),
            "ProjectionExpression": "user_id, sk",
        }
        with self._table.batch_writer() as batch:
            for item in every_item(self._table.query, **arguments):
                batch.delete_item(Key={"user_id": item["user_id"], "sk": item["sk"]})
