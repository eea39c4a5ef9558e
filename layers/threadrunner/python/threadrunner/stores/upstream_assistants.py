"""Which upstream assistant each ``assistants/<name>.yaml`` is synced to, per environment.

One item per (assistant, environment) in the runs table: ``run_id = assistant#<name>``,
``sk = upstream#<environment>``. Every write is conditional on what the writer saw, so concurrent
first uses agree on one upstream assistant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from threadrunner.models.records import Record
from threadrunner.stores._dynamo import from_item, is_condition_failure, to_item


class UpstreamAssistant(Record):
    name: str
    environment: str
    upstream_id: str
    content_hash: str
    synced_at: datetime


def _key(environment: str, name: str) -> dict[str, str]:
    return {"run_id": f"assistant#{name}", "sk": f"upstream#{environment}"}


class UpstreamAssistantStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, environment: str, name: str) -> UpstreamAssistant | None:
        item = self._table.get_item(Key=_key(environment, name), ConsistentRead=True).get("Item")
        return None if item is None else from_item(UpstreamAssistant, item)

    def record(self, assistant: UpstreamAssistant, *, replacing: UpstreamAssistant | None) -> bool:
        """Record ``assistant`` if what is recorded is still ``replacing`` (None: nothing); False when
        another writer changed it first."""
        if replacing is None:
            condition, values = "attribute_not_exists(run_id)", {}
        else:
            condition = "upstream_id = :seen_id AND content_hash = :seen_hash"
            values = {":seen_id": replacing.upstream_id, ":seen_hash": replacing.content_hash}
        return self._conditional(
            self._table.put_item,
            Item=to_item(assistant, **_key(assistant.environment, assistant.name), kind="upstream_assistant"),
            ConditionExpression=condition,
            **({"ExpressionAttributeValues": values} if values else {}),
        )

    def forget(self, assistant: UpstreamAssistant) -> bool:
        """Drop the record if it still names ``assistant.upstream_id``."""
        return self._conditional(
            self._table.delete_item,
            Key=_key(assistant.environment, assistant.name),
            ConditionExpression="upstream_id = :seen_id",
            ExpressionAttributeValues={":seen_id": assistant.upstream_id},
        )

    @staticmethod
    def _conditional(write: Any, **arguments: Any) -> bool:
        try:
            write(**arguments)
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
