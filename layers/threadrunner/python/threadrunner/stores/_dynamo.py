"""Small helpers shared by the stores: item (de)serialisation, and what a failed write means.

A write whose condition did not hold is an answer (``write_if`` returns None). A transaction cancelled by a
conflict with another one, or throttled, says nothing about the condition: it is tried again a few times
(``WriteRetry``), then raised. DynamoDB cancels a TransactWriteItems with one reason per item
(``CancellationReasons``, in the order of the items): only ``ConditionalCheckFailed`` means a condition failed.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)
# One item of a TransactWriteItems: {"Put": {...}}, {"Update": {...}}, {"ConditionCheck": {...}}.
TransactItem = dict[str, Any]

logger = logging.getLogger(__name__)

CONDITION_FAILED = "ConditionalCheckFailed"
# Cancellation reasons that say nothing about the items: another transaction held one, or capacity ran out.
RETRYABLE_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
# A single write on an item a transaction is changing. (botocore's own retries cover throttled single writes:
# ThrottlingException and ProvisionedThroughputExceededException, aws.client_config; not this one.)
RETRYABLE_ERRORS = frozenset({"TransactionConflictException"})
_REASONS_IN_MESSAGE = re.compile(r"\[([A-Za-z, ]*)\]\s*$")


def every_item(read: Callable[..., Any], **arguments: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query or Scan (``table.query`` / ``table.scan``) finds, page after page."""
    while True:
        response = read(**arguments)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def to_item(model: BaseModel, **keys: str) -> dict[str, Any]:
    """A model as a DynamoDB item: JSON-safe values (no floats: DynamoDB wants Decimal), keys added."""
    return {**_decimalize(model.model_dump(mode="json", exclude_none=True)), **keys}


def from_item(model: type[ModelT], item: dict[str, Any]) -> ModelT:
    return model.model_validate(_undecimalize(item))


def to_value(value: Any) -> Any:
    """A single attribute value for an UpdateExpression."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    elif isinstance(value, list):
        value = [
            v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v for v in value
        ]
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    return _decimalize(value)


@dataclass(frozen=True)
class WriteRetry:
    """Writes cancelled by a conflict or a throttle, made again: ``attempts`` in all, waiting anywhere
    between 0 and ``base_seconds * 2^(n-1)`` (capped) before attempt n+1; then the error is raised."""

    attempts: int = 5
    base_seconds: float = 0.05
    max_backoff_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    draw: Callable[[], float] = random.random

    def write(self, write: Callable[..., Any], **request: Any) -> dict[str, Any]:
        attempt = 1
        while True:
            try:
                answer: dict[str, Any] = write(**request)
            except ClientError as error:
                if attempt >= self.attempts or not is_retryable(error):
                    raise
                wait = self.draw() * min(self.max_backoff_seconds, self.base_seconds * 2 ** (attempt - 1))
                logger.info(
                    "DynamoDB write refused (%s), attempt %s of %s: trying again in %.3f s",
                    ", ".join(failure_codes(error)),
                    attempt,
                    self.attempts,
                    wait,
                )
                self.sleep(wait)
                attempt += 1
            else:
                return answer


WRITE_RETRY = WriteRetry()


def write_if(
    write: Callable[..., Any], *, retry: WriteRetry = WRITE_RETRY, **request: Any
) -> dict[str, Any] | None:
    """Make one conditional write (``table.update_item``, ``put_item``, ``delete_item``, or a client's
    ``transact_write_items``); its answer, or None when its condition did not hold. Conflicts and throttles
    are tried again (``retry``), then raised."""
    try:
        return retry.write(write, **request)
    except ClientError as error:
        if is_condition_failure(error):
            return None
        raise


def is_condition_failure(error: ClientError) -> bool:
    """The write's condition (or, for a transaction, one item's) did not hold."""
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    return code == "TransactionCanceledException" and CONDITION_FAILED in cancellation_reasons(error)


def is_retryable(error: ClientError) -> bool:
    """Refused for a reason that passes: a conflicting transaction, or throttling. A transaction that also
    failed a condition is not: the condition gives the same answer again."""
    code = error.response.get("Error", {}).get("Code")
    if code in RETRYABLE_ERRORS:
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = set(cancellation_reasons(error))
    return CONDITION_FAILED not in reasons and bool(reasons & RETRYABLE_CANCELLATIONS)


def cancellation_reasons(error: ClientError) -> list[str]:
    """Each item's reason code of a cancelled transaction (``"None"`` for the items that were fine), as
    botocore parses them, else as the message lists them (``... [ConditionalCheckFailed, None]``)."""
    reasons = error.response.get("CancellationReasons")
    if reasons:
        return [str(reason.get("Code", "None")) for reason in reasons]
    listed = _REASONS_IN_MESSAGE.search(error.response.get("Error", {}).get("Message", ""))
    return [code.strip() for code in listed.group(1).split(",")] if listed else []


def failure_codes(error: ClientError) -> list[str]:
    """The error code, with a cancelled transaction's reasons other than ``None``: for logs."""
    code = str(error.response.get("Error", {}).get("Code"))
    return [code, *(reason for reason in cancellation_reasons(error) if reason != "None")]


def _decimalize(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimalize(v) for v in value]
    return value


def _undecimalize(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _undecimalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_undecimalize(v) for v in value]
    return value
