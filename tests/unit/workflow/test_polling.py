"""The poll schedule: short polls inside Check run while the model call is young, then Waits that back off
with the call's age, the upstream's hint a lower bound throughout."""

from threadrunner.models.workflow import PollSettings
from threadrunner.workflow.polling import SHORT_POLL_SECONDS, next_wait_seconds, short_poll_pause

SETTINGS = PollSettings(first_wait_seconds=2, max_wait_seconds=20, max_polls=100, check_wait_seconds=40)


def test_backs_off_with_the_model_calls_age_from_the_first_wait_to_the_cap() -> None:
    waits = [next_wait_seconds(SETTINGS, age, None) for age in range(0, 300, 10)]
    assert waits[0] == 2
    assert waits == sorted(waits)
    assert waits[-1] == 20


def test_the_hint_is_a_floor_not_a_replacement_for_the_backoff() -> None:
    # A 500 ms hint used to pin every wait at the floor: the backoff goes on growing past it.
    assert next_wait_seconds(SETTINGS, 60, 500) == next_wait_seconds(SETTINGS, 60, None) > 2
    assert next_wait_seconds(SETTINGS, 0, 3_500) == 4  # a longer hint than the backoff wins
    assert next_wait_seconds(SETTINGS, 0, 100) == 2  # never below the first wait
    assert next_wait_seconds(SETTINGS, 0, 600_000) == 20  # never above the cap


def test_the_backoff_restarts_for_each_model_call() -> None:
    """Keyed on the call's age (round_started_at), not on the run's poll count: a new call is young."""
    late_in_first_call = next_wait_seconds(SETTINGS, 200, 500)
    first_poll_of_next_call = next_wait_seconds(SETTINGS, 1, 500)
    assert late_in_first_call == 20
    assert first_poll_of_next_call == 2


def test_zero_cap_means_no_waiting_for_tests() -> None:
    settings = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=5)
    assert next_wait_seconds(settings, 30, 900) == 0


def pause(
    age: float, hint_ms: int | None = None, remaining: float | None = None, budget: float = 60
) -> float | None:
    return short_poll_pause(SETTINGS, age, hint_ms, remaining_seconds=remaining, poll_budget_seconds=budget)


def test_short_polls_about_every_second_while_the_call_is_young() -> None:
    assert pause(0) == SHORT_POLL_SECONDS
    assert pause(38.5) == SHORT_POLL_SECONDS
    assert pause(39.5) is None  # the next poll would come after check_wait_seconds: hand back to a Wait
    assert pause(120) is None


def test_short_polls_honour_a_longer_hint() -> None:
    assert pause(0, hint_ms=500) == SHORT_POLL_SECONDS
    assert pause(0, hint_ms=2_500) == 2.5


def test_short_polls_stop_while_the_lambda_keeps_room_for_one_more_call() -> None:
    assert pause(5, remaining=100, budget=60) == SHORT_POLL_SECONDS
    assert pause(5, remaining=61, budget=60) is None  # sleeping 1 s would leave less than one call's budget
    assert pause(5, remaining=0.5, budget=0) is None


def test_no_short_polls_without_a_bound() -> None:
    """Executions started before the setting existed, and the fast test settings."""
    settings = PollSettings(first_wait_seconds=2, max_wait_seconds=20, max_polls=100)
    assert short_poll_pause(settings, 0, None, remaining_seconds=None, poll_budget_seconds=0) is None
