import time
from datetime import UTC, datetime, timedelta

from threadrunner import clock
from threadrunner.clock import new_id


def test_ids_sort_by_creation_time() -> None:
    first = new_id("thr")
    time.sleep(0.002)
    second = new_id("thr")
    assert first < second
    assert first.startswith("thr_") and len(first) == 30


def test_ids_are_unique() -> None:
    assert len({new_id("run") for _ in range(2000)}) == 2000


def test_retry_after_rounds_up_and_never_says_zero() -> None:
    # Given a moment 14.2 s away, one just passed, and one exactly 10 s away
    since = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    # Then a client is never sent back early, and never told 0
    assert clock.retry_after(since + timedelta(seconds=14.2), since) == 15
    assert clock.retry_after(since - timedelta(seconds=3), since) == 1
    assert clock.retry_after(since + timedelta(seconds=10), since) == 10
