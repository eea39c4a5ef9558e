"""What of a thread's history the chat engine sends: the newest messages that fit the budget."""

from __future__ import annotations

from threadrunner.engines.context_window import approx_tokens, fit


def message(role: str, chars: int) -> dict[str, str]:
    return {"role": role, "content": "x" * chars}


def test_a_token_is_about_four_characters_of_the_message() -> None:
    assert approx_tokens({"role": "user", "content": "x" * 400}) == 108  # 431 characters of JSON


def test_the_newest_earlier_messages_fill_what_the_required_ones_leave() -> None:
    # Given a budget with room for the required messages and two of the earlier ones
    required = [message("system", 100), message("user", 300)]
    earlier = [
        message("user", 400),
        message("assistant", 400),
        message("user", 400),
        message("assistant", 400),
    ]
    budget = sum(approx_tokens(m) for m in [*required, *earlier[2:]])
    # Then the two newest earlier messages fit, oldest first
    assert fit(required, earlier, budget) == earlier[2:]


def test_the_kept_history_starts_at_a_user_message() -> None:
    required = [message("user", 10)]
    earlier = [message("user", 400), message("assistant", 400), message("user", 40), message("assistant", 40)]
    # Room for three: the oldest of them would be an answer without its question, so it goes too
    budget = approx_tokens(required[0]) + approx_tokens(earlier[1]) + 2 * approx_tokens(earlier[2]) + 5
    assert fit(required, earlier, budget) == earlier[2:]


def test_required_messages_are_kept_even_past_the_budget() -> None:
    assert fit([message("user", 10_000)], [message("user", 4)], budget=10) == []
