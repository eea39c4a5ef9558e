"""Wait for model: honour the upstream's hint, else back off from a short first wait to a cap."""

from threadrunner.models.workflow import PollSettings
from threadrunner.workflow.polling import next_wait_seconds

SETTINGS = PollSettings(first_wait_seconds=2, max_wait_seconds=20, max_polls=100)


def test_backs_off_from_the_first_wait_to_the_cap() -> None:
    waits = [next_wait_seconds(SETTINGS, poll, None) for poll in range(1, 12)]
    assert waits[0] == 2
    assert waits == sorted(waits)
    assert waits[-1] == 20


def test_honours_the_upstream_hint_within_bounds() -> None:
    assert next_wait_seconds(SETTINGS, 5, 3_500) == 4
    assert next_wait_seconds(SETTINGS, 5, 100) == 2  # never below the first wait
    assert next_wait_seconds(SETTINGS, 5, 600_000) == 20  # never above the cap


def test_zero_cap_means_no_waiting_for_tests() -> None:
    assert next_wait_seconds(PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=5), 3, 900) == 0
