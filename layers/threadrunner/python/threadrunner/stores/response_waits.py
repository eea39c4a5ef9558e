"""Who waits for which upstream response (webhook completion): runs table, ``run_id = response#<response id>``,
``sk = wait``, one item per response, removed by TTL (``expires_at``, epoch seconds).

Two writers meet on that item, each with one atomic update that returns the item as it is afterwards:

- the waiter (the "Wait for model" callback task) stores its task token; if the item already says the response
  ended (a webhook came first), the waiter resumes itself;
- the webhook stores the response's final status once (a condition makes duplicates no-ops); if a token is
  stored, the webhook resumes the waiter.

Whichever writes second sees the other's write, so exactly one of them calls SendTaskSuccess, and a webhook
that arrives before the token is recorded is not lost. A webhook for a response nobody waits for (yet, or
ever) leaves only that TTL'd marker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from threadrunner.stores._dynamo import is_condition_failure

WAIT_TTL_SECONDS = 3 * 24 * 3600  # OpenAI retries a webhook for up to 72 h
KEY_PREFIX = "response#"


def wait_key(response_id: str) -> dict[str, str]:
    return {"run_id": f"{KEY_PREFIX}{response_id}", "sk": "wait"}


@dataclass(frozen=True)
class ResponseWait:
    response_id: str
    task_token: str | None = None
    status: str | None = None  # set by the webhook: completed, failed, cancelled, incomplete


def _wait(response_id: str, item: dict[str, Any]) -> ResponseWait:
    return ResponseWait(response_id, item.get("task_token"), item.get("status"))


class ResponseWaitStore:
    def __init__(self, table: Any, *, ttl_seconds: int = WAIT_TTL_SECONDS) -> None:
        self._table = table
        self._ttl_seconds = ttl_seconds

    def _expires_at(self) -> int:
        return int(time.time()) + self._ttl_seconds

    def get(self, response_id: str) -> ResponseWait | None:
        item = self._table.get_item(Key=wait_key(response_id), ConsistentRead=True).get("Item")
        return None if item is None else _wait(response_id, item)

    def record_token(self, response_id: str, task_token: str, run_id: str) -> ResponseWait:
        """Store the waiter's token (a later wait for the same response replaces it); the item afterwards."""
        attributes = self._table.update_item(
            Key=wait_key(response_id),
            UpdateExpression="SET task_token = :token, waiting_run = :run, expires_at = :expires",
            ExpressionAttributeValues={":token": task_token, ":run": run_id, ":expires": self._expires_at()},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _wait(response_id, attributes)

    def record_status(self, response_id: str, status: str) -> ResponseWait | None:
        """Store the response's final status, once: the item afterwards, or None if a webhook for this response
        was recorded already (a duplicate, or another event for the same response: the first one wins)."""
        try:
            attributes = self._table.update_item(
                Key=wait_key(response_id),
                UpdateExpression="SET #status = :status, expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression="attribute_not_exists(#status)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": status, ":expires": self._expires_at()},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return _wait(response_id, attributes)
