"""Budgets and prices: under a cost budget a run must be on a priced model (its cost could not be counted
otherwise); the environment's own prices make a model priced; without a cost budget nothing is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from threadrunner.budgets import BudgetExceededError, ModelUnpricedError, check_budgets
from threadrunner.models.usage import DailyUsage
from threadrunner.pricing import ModelPrice
from threadrunner.settings import CostSettings

NOON = datetime(2026, 11, 25, 12, tzinfo=UTC)
FRESH_DAY = DailyUsage(day=date(2026, 11, 25))


@pytest.mark.parametrize("model", ["gpt-5-pro-max", "o3-pro-mini", "someone-elses-model"])
def test_a_cost_budget_refuses_a_model_without_a_price_naming_it(model: str) -> None:
    with pytest.raises(ModelUnpricedError) as refused:
        check_budgets(FRESH_DAY, CostSettings(daily_cost_budget_usd=5), NOON, model=model)
    assert (refused.value.code, refused.value.field, refused.value.model) == (
        "model_unpriced",
        "model",
        model,
    )
    assert model in str(refused.value) and "prices" in str(refused.value)


def test_a_price_listed_by_the_environment_lets_the_model_run_under_a_cost_budget() -> None:
    listed = CostSettings(
        daily_cost_budget_usd=5, prices={"local-llm": ModelPrice(input=0, cached_input=0, output=0)}
    )
    check_budgets(FRESH_DAY, listed, NOON, model="local-llm")
    check_budgets(FRESH_DAY, listed, NOON, model="local-llm-2026-01-31")  # its dated snapshot too


def test_priced_models_and_their_snapshots_pass_and_no_cost_budget_refuses_nothing() -> None:
    budget = CostSettings(daily_cost_budget_usd=5)
    check_budgets(FRESH_DAY, budget, NOON, model="gpt-5-mini")
    check_budgets(FRESH_DAY, budget, NOON, model="gpt-4.1-mini-2025-04-14")
    # A token budget counts tokens, which every model has: no price needed
    check_budgets(FRESH_DAY, CostSettings(daily_token_budget=100), NOON, model="someone-elses-model")
    check_budgets(FRESH_DAY, CostSettings(), NOON, model="someone-elses-model")


def test_an_unpriced_model_is_named_before_a_used_up_budget() -> None:
    # The refusal that says what to fix (a price) wins over one that only says when to retry
    spent = DailyUsage(day=date(2026, 11, 25), cost_usd=9)
    with pytest.raises(ModelUnpricedError):
        check_budgets(spent, CostSettings(daily_cost_budget_usd=5), NOON, model="gpt-5-pro-max")
    with pytest.raises(BudgetExceededError):
        check_budgets(spent, CostSettings(daily_cost_budget_usd=5), NOON, model="gpt-5-pro")
