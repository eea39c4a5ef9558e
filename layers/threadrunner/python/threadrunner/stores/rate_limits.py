"""Per-user rate limits: a counter per user per minute, ``rate#<limit>#<yyyy-mm-ddThh:mm>`` beside the user's
threads (threads table, partition ``user_id``), raised with one conditional ADD so concurrent requests can
never take more than the limit between them, and expired by TTL a few minutes after its minute."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.clock import retry_after
from threadrunner.errors import RateLimitExceededError
from threadrunner.stores._dynamo import is_condition_failure

RATE_PREFIX = "rate#"
# TTL deletes "within a few days"; the window is in the key, so a late deletion never counts against anyone.
_KEEP_SECONDS = 300


def _window(moment: datetime) -> tuple[str, datetime]:
    """The minute ``moment`` falls in (its label) and when the next one starts."""
    start = moment.replace(second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M"), start + timedelta(minutes=1)


class RateLimitStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def take(self, user_id: str, limit_name: str, per_minute: int) -> int:
        """Count one more ``limit_name`` for the user this minute and return how many that makes, or raise
        RateLimitExceededError (counting nothing) when the minute already holds ``per_minute``."""
        now = clock.now()
        window, next_window = _window(now)
        try:
            response = self._table.update_item(
                Key={"user_id": user_id, "sk": f"{RATE_PREFIX}{limit_name}#{window}"},
                UpdateExpression="SET kind = :kind, expires_at = :expires ADD #count :one",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":kind": "rate",
                    ":expires": clock.epoch(next_window) + _KEEP_SECONDS,
                    ":one": 1,
                    ":limit": per_minute,
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            wait = retry_after(next_window, now)
            raise RateLimitExceededError(
                f"at most {per_minute} {limit_name} per minute; try again in {wait} s", wait
            ) from None
        return int(response["Attributes"]["count"])
