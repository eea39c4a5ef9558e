import time

from threadrunner.clock import new_id


def test_ids_sort_by_creation_time() -> None:
    first = new_id("thr")
    time.sleep(0.002)
    second = new_id("thr")
    assert first < second
    assert first.startswith("thr_") and len(first) == 30


def test_ids_are_unique() -> None:
    assert len({new_id("run") for _ in range(2000)}) == 2000
