"""Small helpers shared by the stores: item (de)serialisation and condition failures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)


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


def write_if(write: Callable[..., Any], **request: Any) -> dict[str, Any] | None:
    """Make one conditional write (``table.update_item``, ``put_item``, ``delete_item``, or a client's
    ``transact_write_items``); its answer, or None when its condition did not hold."""
    try:
        answer: dict[str, Any] = write(**request)
    except ClientError as error:
        if is_condition_failure(error):
            return None
        raise
    return answer


def is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    }


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
