"""Idempotent creates (moto DynamoDB, Powertools idempotency): once per caller and key, crash-safe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from pydantic import BaseModel
from threadrunner.errors import ConflictError, InvalidRequestError, ServiceUnavailableError
from threadrunner.idempotency import HEADER, IdempotentRequests

from tests.support.aws import moto_tables


class Created(BaseModel):
    id: str


@dataclass
class FakeContext:
    """What Powertools reads of the Lambda context: how long the invocation may still run."""

    remaining_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Crash(BaseException):
    """The Lambda dies mid-request (a timeout, out of memory): nothing of ours runs after it."""


@pytest.fixture
def requests() -> Iterator[IdempotentRequests]:
    with moto_tables() as tables:
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield IdempotentRequests(tables["idempotency"], client, expires_after_seconds=3600)


def _run(requests: IdempotentRequests, created: list[str], *, user: str = "alice", body: Any = None) -> Any:
    def create() -> tuple[int, BaseModel]:
        created.append(f"thr_{len(created)}")
        return 201, Created(id=created[-1])

    return requests.run(
        user_id=user, key="k-1", operation="POST /v1/threads", body=body or {"purpose": "a"}, create=create
    )


def test_a_repeat_answers_the_stored_answer_and_creates_nothing(requests: IdempotentRequests) -> None:
    requests.register_lambda_context(FakeContext(remaining_ms=20_000))
    created: list[str] = []

    first, repeat = _run(requests, created), _run(requests, created)

    assert created == ["thr_0"]
    assert (first.status, first.body, first.replayed) == (201, {"id": "thr_0"}, False)
    assert (repeat.status, repeat.body, repeat.replayed) == (201, {"id": "thr_0"}, True)


def test_keys_are_per_user_and_a_changed_body_is_refused(requests: IdempotentRequests) -> None:
    requests.register_lambda_context(FakeContext(remaining_ms=20_000))
    created: list[str] = []
    _run(requests, created)

    assert _run(requests, created, user="bob").body == {"id": "thr_1"}
    with pytest.raises(InvalidRequestError) as refused:
        _run(requests, created, body={"purpose": "b"})
    assert refused.value.field == HEADER
    assert created == ["thr_0", "thr_1"]


def test_a_crashed_request_blocks_repeats_until_its_lambda_would_have_timed_out(
    requests: IdempotentRequests,
) -> None:
    # Given a request whose Lambda died after claiming the key
    def crash() -> tuple[int, BaseModel]:
        raise Crash

    requests.register_lambda_context(FakeContext(remaining_ms=20_000))
    with pytest.raises(Crash):
        requests.run(
            user_id="alice", key="k-1", operation="POST /v1/threads", body={"purpose": "a"}, create=crash
        )
    created: list[str] = []
    # When a repeat comes while that Lambda could still be running: 409, nothing created
    with pytest.raises(ConflictError):
        _run(requests, created)
    assert created == []
    # Then once its time is up (claimed with no time left), a repeat runs
    requests.register_lambda_context(FakeContext(remaining_ms=0))
    with pytest.raises(Crash):
        requests.run(
            user_id="alice", key="k-2", operation="POST /v1/threads", body={"purpose": "a"}, create=crash
        )
    answer = requests.run(
        user_id="alice",
        key="k-2",
        operation="POST /v1/threads",
        body={"purpose": "a"},
        create=lambda: (201, Created(id="thr_again")),
    )
    assert (answer.status, answer.body, answer.replayed) == (201, {"id": "thr_again"}, False)


def test_an_error_is_not_stored(requests: IdempotentRequests) -> None:
    requests.register_lambda_context(FakeContext(remaining_ms=20_000))

    def refuse() -> tuple[int, BaseModel]:
        raise ConflictError("busy")

    with pytest.raises(ConflictError):
        requests.run(
            user_id="alice", key="k-1", operation="POST /v1/threads", body={"purpose": "a"}, create=refuse
        )
    created: list[str] = []
    assert _run(requests, created).replayed is False
    assert created == ["thr_0"]


def test_a_users_stored_answers_go_with_their_data_and_no_one_elses(requests: IdempotentRequests) -> None:
    # Given stored answers of alice and bob, in their own partitions
    requests.register_lambda_context(FakeContext(remaining_ms=20_000))
    created: list[str] = []
    _run(requests, created)
    _run(requests, created, user="bob")
    table = requests._table
    assert sorted(item["user_id"] for item in table.scan()["Items"]) == ["alice", "bob"]
    assert all(item["sk"].startswith("api#") for item in table.scan()["Items"])
    # When alice's data is deleted
    requests.delete_all("alice")
    # Then her key is new again, and bob's answer is still his
    assert _run(requests, created).replayed is False
    assert _run(requests, created, user="bob").body == {"id": "thr_1"}
    assert created == ["thr_0", "thr_1", "thr_2"]


def test_when_the_store_fails_nothing_is_created_and_the_caller_may_retry() -> None:
    with moto_tables():
        client = boto3.client("dynamodb", region_name="us-east-1")
        missing = boto3.resource("dynamodb", region_name="us-east-1").Table("no-such-table")
        requests = IdempotentRequests(missing, client, expires_after_seconds=3600)
        requests.register_lambda_context(FakeContext(remaining_ms=20_000))
        created: list[str] = []

        with pytest.raises(ServiceUnavailableError):
            _run(requests, created)

        assert created == []
