"""Usage and budgets: the per-user daily counters, GET /v1/usage, and the budgets (the 429 a budget answers:
models.api.BudgetExceededOut, beside every other error answer)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel


class DailyUsage(DeferredModel):
    """One user's runs that ended on one UTC day (the ``usage#<day>`` counters)."""

    model_config = ConfigDict(extra="ignore")

    day: date
    runs: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_runs: int = 0  # runs on a model without a price: their cost is not in cost_usd


class UsageOut(DeferredModel):
    """GET /v1/usage: the caller's days from ``from`` to ``to`` (UTC, both included) and their sum."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    from_: date = Field(alias="from")
    to: date
    days: list[DailyUsage]
    total: DailyUsage = Field(description="the sum of the days (its day is the last one)")


BudgetName = Literal["daily_tokens", "daily_cost_usd"]
