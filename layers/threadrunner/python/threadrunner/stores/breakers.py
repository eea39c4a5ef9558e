"""Circuit breakers: an engine that just had an outage, per environment (runs table: ``run_id =
breaker#<environment>``, ``sk = engine#<engine>``). No item: the engine is healthy.

Times are epoch seconds (numbers compare in DynamoDB conditions; ISO strings of varying precision do not).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from threadrunner.models.records import Record
from threadrunner.stores._dynamo import from_item, is_condition_failure, to_item


class BreakerState(Record):
    environment: str
    engine: str
    reason: str
    opened_at: float
    open_until: float  # runs go to the fallback engine until then
    trial_until: float | None = None  # half-open: one run is trying the engine again until then


def _key(environment: str, engine: str) -> dict[str, str]:
    return {"run_id": f"breaker#{environment}", "sk": f"engine#{engine}"}


class CircuitBreakerStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, environment: str, engine: str) -> BreakerState | None:
        item = self._table.get_item(Key=_key(environment, engine), ConsistentRead=True).get("Item")
        return None if item is None else from_item(BreakerState, item)

    def open(self, state: BreakerState) -> None:
        """(Re)open: a failed trial or a new outage starts a new cooling period."""
        self._table.put_item(Item=to_item(state, **_key(state.environment, state.engine), kind="breaker"))

    def take_trial(self, environment: str, engine: str, now: float, until: float) -> bool:
        """After the cooling period, exactly one run tries the engine again: True for the run that won."""
        try:
            self._table.update_item(
                Key=_key(environment, engine),
                UpdateExpression="SET trial_until = :until",
                ConditionExpression="open_until <= :now AND (attribute_not_exists(trial_until) OR trial_until <= :now)",
                ExpressionAttributeValues={":now": _number(now), ":until": _number(until)},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def close(self, environment: str, engine: str) -> None:
        self._table.delete_item(Key=_key(environment, engine))


def _number(value: float) -> Decimal:
    return Decimal(str(value))
