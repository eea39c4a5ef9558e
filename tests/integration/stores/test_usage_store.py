"""Daily usage counters (moto): atomic adds, ranges with empty days, budgets and their reset at midnight UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from threadrunner.budgets import BudgetExceededError, check_budgets
from threadrunner.models.records import Usage
from threadrunner.settings import CostSettings
from threadrunner.stores.usage import UsageStore

from tests.support.aws import moto_tables

DAY = date(2026, 11, 25)
MODEL = "gpt-5-mini"  # priced in prices.json


@pytest.fixture
def store() -> Iterator[UsageStore]:
    with moto_tables() as tables:
        yield UsageStore(tables["threads"])


def test_runs_add_up_per_user_and_day_and_missing_days_read_as_zero(store: UsageStore) -> None:
    store.add(
        "alice", DAY, Usage(prompt_tokens=100, cached_tokens=40, completion_tokens=10, total_tokens=110), 0.25
    )
    store.add(
        "alice", DAY, Usage(prompt_tokens=5, completion_tokens=5, reasoning_tokens=2, total_tokens=10), None
    )
    store.add("bob", DAY, Usage(prompt_tokens=1, total_tokens=1), 1.0)

    days = store.between("alice", date(2026, 11, 24), date(2026, 11, 26))

    assert [d.day for d in days] == [date(2026, 11, 24), DAY, date(2026, 11, 26)]
    counted = days[1]
    assert (counted.runs, counted.total_tokens, counted.cached_tokens, counted.reasoning_tokens) == (
        2,
        120,
        40,
        2,
    )
    assert counted.cost_usd == pytest.approx(0.25) and counted.unpriced_runs == 1
    assert days[0].runs == days[2].runs == 0


def test_a_used_up_budget_refuses_until_the_next_utc_midnight(store: UsageStore) -> None:
    settings = CostSettings(daily_token_budget=100, daily_cost_budget_usd=5)
    store.add("alice", DAY, Usage(prompt_tokens=90, completion_tokens=20, total_tokens=110), 0.5)
    late_evening = datetime(2026, 11, 25, 23, 59, 30, tzinfo=UTC)

    with pytest.raises(BudgetExceededError) as refused:
        check_budgets(store.day("alice", late_evening.date()), settings, late_evening, model=MODEL)
    assert (refused.value.budget, refused.value.limit, refused.value.used) == ("daily_tokens", 100, 110)
    assert refused.value.resets_at == datetime(2026, 11, 26, tzinfo=UTC)

    midnight = refused.value.resets_at
    # A new day: allowed again; others: not affected
    check_budgets(store.day("alice", midnight.date()), settings, midnight, model=MODEL)
    check_budgets(store.day("bob", late_evening.date()), settings, late_evening, model=MODEL)


def test_the_cost_budget_counts_too(store: UsageStore) -> None:
    store.add("alice", DAY, Usage(total_tokens=1), 2.0)
    store.add("alice", DAY, Usage(total_tokens=1), 3.0)
    noon = datetime(2026, 11, 25, 12, tzinfo=UTC)
    with pytest.raises(BudgetExceededError) as refused:
        check_budgets(store.day("alice", DAY), CostSettings(daily_cost_budget_usd=5), noon, model=MODEL)
    assert refused.value.budget == "daily_cost_usd" and refused.value.used == pytest.approx(5.0)
    # No budgets configured: never refused
    check_budgets(store.day("alice", DAY), CostSettings(), noon, model=MODEL)


def test_deleting_a_users_usage_leaves_others(store: UsageStore) -> None:
    for day in (DAY, date(2026, 11, 26)):
        store.add("alice", day, Usage(total_tokens=1), 0.1)
    store.add("bob", DAY, Usage(total_tokens=1), 0.1)
    store.delete_all("alice")
    assert all(d.runs == 0 for d in store.between("alice", DAY, date(2026, 11, 26)))
    assert store.day("bob", DAY).runs == 1
