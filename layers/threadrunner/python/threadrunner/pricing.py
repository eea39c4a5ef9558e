"""What a run cost: the price table (USD per 1M tokens, per model) applied to its usage.

The table ships with the library (prices.json) and an environment may override or extend it (``prices`` in
cdk.json, THREADRUNNER_PRICES). A model missing from the table has no cost (None), never a guessed one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from threadrunner.models.records import Usage

PRICES_FILE = Path(__file__).with_name("prices.json")
_PER_TOKENS = 1_000_000
# Costs are kept to a millionth of a cent: finer digits are noise and only make sums drift.
_DIGITS = 8


class ModelPrice(BaseModel):
    """USD per 1M tokens. Cached input tokens are part of the input tokens, billed at their own rate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


PriceTable = Mapping[str, ModelPrice]


@cache
def default_prices() -> dict[str, ModelPrice]:
    raw = json.loads(PRICES_FILE.read_text())
    return {
        model: ModelPrice.model_validate(price) for model, price in raw.items() if not model.startswith("_")
    }


def price_for(model: str, prices: PriceTable) -> ModelPrice | None:
    """The model's price; a dated snapshot (``gpt-4.1-mini-2025-04-14``) takes its family's price."""
    if model in prices:
        return prices[model]
    families = [name for name in prices if model.startswith(f"{name}-")]
    return prices[max(families, key=len)] if families else None


def estimate_cost(model: str, usage: Usage, prices: PriceTable) -> float | None:
    """USD for ``usage`` on ``model``; None when the model has no price. Reasoning tokens are output tokens
    (already counted in ``completion_tokens``)."""
    price = price_for(model, prices)
    if price is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cost = (
        (usage.prompt_tokens - cached) * price.input
        + cached * price.cached_input
        + usage.completion_tokens * price.output
    ) / _PER_TOKENS
    return round(cost, _DIGITS)
