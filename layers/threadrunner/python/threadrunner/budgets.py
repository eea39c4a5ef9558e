"""Per-user daily budgets (tokens and/or USD, per environment), checked when a run is created.

A run that crosses a budget while it runs still finishes (its usage is only known at the end); the next
run of that user that day is refused, until the budget resets at the next UTC midnight.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from threadrunner.errors import ThreadrunnerError
from threadrunner.models.usage import BudgetName, DailyUsage
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


def next_reset(now: datetime) -> datetime:
    """The next UTC midnight: when today's budgets start again."""
    return datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)


def check_budgets(today: DailyUsage, settings: CostSettings, now: datetime) -> None:
    """Raise BudgetExceededError when the caller has used up a budget of ``today``."""
    budgets: list[tuple[BudgetName, float | None, float]] = [
        ("daily_tokens", settings.daily_token_budget, today.total_tokens),
        ("daily_cost_usd", settings.daily_cost_budget_usd, today.cost_usd),
    ]
    for name, limit, used in budgets:
        if limit is not None and used >= limit:
            raise BudgetExceededError(name, limit, used, next_reset(now))
