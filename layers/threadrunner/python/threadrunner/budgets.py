"""Per-user daily budgets (tokens and/or USD, per environment), checked when a run is created.

A run that crosses a budget while it runs still finishes (its usage is only known at the end); the next
run of that user that day is refused, until the budget resets at the next UTC midnight. Under a cost budget
a run must be on a priced model: an unpriced run's cost is unknown, so no cost budget could stop it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from threadrunner.errors import InvalidRequestError, ThreadrunnerError
from threadrunner.models.usage import BudgetName, DailyUsage
from threadrunner.pricing import price_for
from threadrunner.settings import CostSettings


class BudgetExceededError(ThreadrunnerError):
    code = "budget_exceeded"

    def __init__(self, budget: BudgetName, limit: float, used: float, resets_at: datetime) -> None:
        super().__init__(
            f"the {budget} budget of {limit:g} is used up ({used:g}); it resets at {resets_at.isoformat()}"
        )
        self.budget = budget
        self.limit = limit
        self.used = used
        self.resets_at = resets_at


class ModelUnpricedError(InvalidRequestError):
    """A cost budget is set and the run's model has no price: a 422 naming ``model``; nothing is created."""

    code = "model_unpriced"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"this assistant runs on {model}, which has no price here, and this environment has a daily cost "
            "budget: runs on it are refused until the environment lists its price (prices in cdk.json)",
            field="model",
        )
        self.model = model


def next_reset(now: datetime) -> datetime:
    """The next UTC midnight: when today's budgets start again."""
    return datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)


def check_budgets(today: DailyUsage, settings: CostSettings, now: datetime, *, model: str) -> None:
    """Raise ModelUnpricedError when a cost budget is set and ``model`` (the run's) has no price, and
    BudgetExceededError when the caller has used up a budget of ``today``."""
    if settings.daily_cost_budget_usd is not None and price_for(model, settings.price_table) is None:
        raise ModelUnpricedError(model)
    budgets: list[tuple[BudgetName, float | None, float]] = [
        ("daily_tokens", settings.daily_token_budget, today.total_tokens),
        ("daily_cost_usd", settings.daily_cost_budget_usd, today.cost_usd),
    ]
    for name, limit, used in budgets:
        if limit is not None and used >= limit:
            raise BudgetExceededError(name, limit, used, next_reset(now))
