"""What a run cost: the price table (USD per 1M tokens, per model) applied to its usage.

The table ships with the library (prices.json) and an environment may override or extend it (``prices`` in
cdk.json, THREADRUNNER_PRICES). Prices are never guessed: a model is priced by its own entry, or, for a dated
snapshot, by its family's (the exact ``-YYYY-MM-DD`` rule below). Anything else (``o3-pro`` is not ``o3``,
``gpt-5-pro`` not ``gpt-5``: they cost about ten times more) has no price, so its cost is None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path

from pydantic import ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import Usage

PRICES_FILE = Path(__file__).with_name("prices.json")
_PER_TOKENS = 1_000_000
# Costs are kept to a millionth of a cent: finer digits are noise and only make sums drift.
_DIGITS = 8
# A dated snapshot: the family's name, a hyphen and an ISO date, nothing before or after it.
_SNAPSHOT = re.compile(r"(?P<family>.+)-(?P<day>\d{4}-\d{2}-\d{2})")


class ModelPrice(DeferredModel):
    """USD per 1M tokens. Cached input tokens are part of the input tokens, billed at their own rate (a model
    without a cache discount lists its input price again)."""

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
    """The model's own price; else, for a dated snapshot (``gpt-4.1-mini-2025-04-14``), its family's
    (``gpt-4.1-mini``); else None. A snapshot priced differently from its family has its own entry."""
    if model in prices:
        return prices[model]
    family = snapshot_family(model)
    return prices.get(family) if family is not None else None


def snapshot_family(model: str) -> str | None:
    """``gpt-4.1-mini-2025-04-14`` -> ``gpt-4.1-mini``; None when ``model`` does not end in a real date."""
    snapshot = _SNAPSHOT.fullmatch(model)
    if snapshot is None:
        return None
    try:
        date.fromisoformat(snapshot["day"])
    except ValueError:
        return None
    return snapshot["family"]


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
