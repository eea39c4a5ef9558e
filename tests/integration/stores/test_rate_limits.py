"""The per-user runs-per-minute counter (moto): atomic under concurrency, per user, per minute."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from threadrunner import clock
from threadrunner.errors import RateLimitExceededError
from threadrunner.stores import rate_limits
from threadrunner.stores.rate_limits import RateLimitStore

from tests.support.aws import moto_tables


class FrozenClock:
    """Stands in for threadrunner.clock in the store: the minute is the test's, not the wall clock's."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    epoch = staticmethod(clock.epoch)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock(datetime(2026, 11, 30, 12, 0, 45, tzinfo=UTC))
    monkeypatch.setattr(rate_limits, "clock", frozen)
    return frozen


@pytest.fixture
def store() -> Iterator[RateLimitStore]:
    with moto_tables() as tables:
        yield RateLimitStore(tables["threads"])


def test_concurrent_requests_never_take_more_than_the_limit(
    store: RateLimitStore, frozen: FrozenClock
) -> None:
    # Given a limit of 5 a minute, when 12 requests of one user arrive at once
    def take(_: int) -> bool:
        try:
            store.take("alice", "runs", 5)
        except RateLimitExceededError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(take, range(12)))
    # Then exactly 5 get through
    assert outcomes.count(True) == 5


def test_over_the_limit_says_when_the_next_minute_starts_and_counts_nothing(
    store: RateLimitStore, frozen: FrozenClock
) -> None:
    # Given a user who used up the minute
    assert [store.take("alice", "runs", 2) for _ in range(2)] == [1, 2]
    # When they ask again 45 s into the minute
    with pytest.raises(RateLimitExceededError) as refused:
        store.take("alice", "runs", 2)
    # Then the answer is to wait the 15 s left
    assert refused.value.retry_after_seconds == 15
    assert "at most 2 runs per minute" in str(refused.value)
    # (a part of a second left counts as a whole one: retrying early would only be refused again)
    frozen.moment = frozen.moment.replace(microsecond=500_000)
    with pytest.raises(RateLimitExceededError) as refused:
        store.take("alice", "runs", 2)
    assert refused.value.retry_after_seconds == 15
    # and another user is not affected, nor is the same user the next minute
    assert store.take("bob", "runs", 2) == 1
    frozen.moment = frozen.moment.replace(minute=1, second=0)
    assert store.take("alice", "runs", 2) == 1


def test_the_counter_expires_through_ttl_soon_after_its_minute(
    store: RateLimitStore, frozen: FrozenClock
) -> None:
    store.take("alice", "runs", 3)

    table = store._table
    (item,) = table.scan()["Items"]
    assert item["sk"] == "rate#runs#2026-11-30T12:00"
    next_minute = datetime(2026, 11, 30, 12, 1, tzinfo=UTC)
    assert clock.epoch(next_minute) < int(item["expires_at"]) <= clock.epoch(next_minute) + 600
    assert item["kind"] == "rate"
