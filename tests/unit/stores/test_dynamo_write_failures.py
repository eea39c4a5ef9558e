"""What a refused DynamoDB write means: a condition that did not hold is an answer, a transaction cancelled by a
conflict or a throttle is tried again (a bounded number of times, with full-jitter backoff), anything else is
raised. Errors shaped as botocore returns them (``CancellationReasons`` beside ``Error``)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from threadrunner.stores._dynamo import (
    WriteRetry,
    cancellation_reasons,
    is_condition_failure,
    is_retryable,
    write_if,
)


def cancelled(*reasons: str, in_response: bool = True) -> ClientError:
    """A TransactWriteItems cancellation, one reason per item, as botocore parses DynamoDB's answer."""
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]"
    response: dict[str, Any] = {"Error": {"Code": "TransactionCanceledException", "Message": message}}
    if in_response:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, "TransactWriteItems")


def refused(code: str, operation: str = "UpdateItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)


@pytest.mark.parametrize(
    ("error", "condition_failed", "retryable"),
    [
        (cancelled("ConditionalCheckFailed", "None"), True, False),
        (cancelled("None", "ConditionalCheckFailed"), True, False),
        (cancelled("None", "TransactionConflict"), False, True),
        (cancelled("ThrottlingError", "None"), False, True),
        (cancelled("ProvisionedThroughputExceeded"), False, True),
        (cancelled("RequestLimitExceeded", "None"), False, True),
        # a condition that failed gives the same answer again, whatever else happened
        (cancelled("ConditionalCheckFailed", "TransactionConflict"), True, False),
        (cancelled("ValidationError", "None"), False, False),
        (cancelled("ItemCollectionSizeLimitExceeded", "None"), False, False),
        # without the parsed reasons (older clients), the message lists them
        (cancelled("ConditionalCheckFailed", "None", in_response=False), True, False),
        (cancelled("None", "TransactionConflict", in_response=False), False, True),
        (refused("ConditionalCheckFailedException"), True, False),
        (refused("TransactionConflictException"), False, True),
        (refused("ValidationException"), False, False),
        (refused("ResourceNotFoundException"), False, False),
    ],
    ids=lambda value: value if isinstance(value, bool) else None,
)
def test_only_a_failed_condition_is_a_condition_failure_and_only_conflicts_and_throttles_are_retried(
    error: ClientError, condition_failed: bool, retryable: bool
) -> None:
    assert is_condition_failure(error) is condition_failed
    assert is_retryable(error) is retryable


def test_the_reasons_are_read_in_the_order_of_the_items() -> None:
    assert cancellation_reasons(cancelled("None", "TransactionConflict", "None")) == [
        "None",
        "TransactionConflict",
        "None",
    ]
    assert cancellation_reasons(refused("ValidationException")) == []


class Write:
    """A write that fails with the given errors first, then answers."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.errors:
            raise self.errors.pop(0)
        return {"written": True}


def test_a_conflict_is_tried_again_with_full_jitter_backoff_until_the_write_goes_through() -> None:
    # Given a transaction that conflicts twice with another one on the same item
    write = Write(cancelled("None", "TransactionConflict"), cancelled("ThrottlingError", "None"))
    slept: list[float] = []
    retry = WriteRetry(
        attempts=5, base_seconds=0.1, max_backoff_seconds=1.0, sleep=slept.append, draw=lambda: 0.5
    )
    # When it is written
    answer = write_if(write, retry=retry, TransactItems=["x"])
    # Then the third attempt is its answer, after waits drawn below 0.1 s, then 0.2 s
    assert answer == {"written": True} and len(write.calls) == 3
    assert slept == [pytest.approx(0.05), pytest.approx(0.1)]


def test_conflicts_that_do_not_pass_are_raised_after_the_last_attempt_never_read_as_a_condition() -> None:
    write = Write(*(cancelled("TransactionConflict", "None") for _ in range(9)))
    slept: list[float] = []
    retry = WriteRetry(
        attempts=5, base_seconds=1.0, max_backoff_seconds=3.0, sleep=slept.append, draw=lambda: 1.0
    )
    with pytest.raises(ClientError) as raised:
        write_if(write, retry=retry, TransactItems=["x"])
    assert cancellation_reasons(raised.value) == ["TransactionConflict", "None"]
    assert len(write.calls) == 5
    assert slept == [1.0, 2.0, 3.0, 3.0]  # doubling, capped


def test_a_failed_condition_is_answered_at_once_and_other_errors_are_raised_at_once() -> None:
    slept: list[float] = []
    retry = WriteRetry(sleep=slept.append)
    condition = Write(cancelled("ConditionalCheckFailed", "None"))
    assert write_if(condition, retry=retry, TransactItems=["x"]) is None
    invalid = Write(refused("ValidationException"))
    with pytest.raises(ClientError):
        write_if(invalid, retry=retry, Key={})
    assert (len(condition.calls), len(invalid.calls), slept) == (1, 1, [])
