"""The price table: cached input at its own rate, reasoning inside output, snapshots by the exact date rule,
never a prefix, overrides, unknown models."""

from __future__ import annotations

import pytest
from threadrunner.models.records import Usage
from threadrunner.pricing import ModelPrice, default_prices, estimate_cost, price_for
from threadrunner.settings import CostSettings

PRICES = {
    "m": ModelPrice(input=2.0, cached_input=0.5, output=8.0),
    "m-mini": ModelPrice(input=0.4, cached_input=0.1, output=1.6),
}


def test_cached_tokens_are_billed_at_the_cached_rate_and_reasoning_as_output() -> None:
    usage = Usage(
        prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=500_000, reasoning_tokens=300_000
    )
    # 600k fresh input at 2.0, 400k cached at 0.5, 500k output (reasoning included) at 8.0
    assert estimate_cost("m", usage, PRICES) == pytest.approx(1.2 + 0.2 + 4.0)


def test_a_dated_snapshot_takes_its_familys_price_by_the_exact_date_rule_only() -> None:
    assert price_for("m-mini-2025-04-14", PRICES) == PRICES["m-mini"]
    assert price_for("m-2025-08-07", PRICES) == PRICES["m"]
    # Not a snapshot: a suffix that is not exactly -YYYY-MM-DD, or not a real date
    for model in ("mx", "m-2025-08", "m-20250807", "m-2025-08-07-beta", "m-2025-13-01", "m-mini-2025-02-30"):
        assert price_for(model, PRICES) is None, model


@pytest.mark.parametrize(
    "model", ["m-pro", "m-mini-high", "m-pro-2025-10-06", "m-mini-pro", "m-", "m-turbo-2025-01-01"]
)
def test_a_variant_is_never_priced_by_its_prefix(model: str) -> None:
    # o3-pro is not o3 and gpt-5-pro is not gpt-5: a variant costs what its own entry says, or is unknown
    assert price_for(model, PRICES) is None
    assert estimate_cost(model, Usage(prompt_tokens=1000, total_tokens=1000), PRICES) is None


def test_the_shipped_pro_models_have_their_own_price_not_their_familys() -> None:
    shipped = default_prices()
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000)
    for pro, family in (("o3-pro", "o3"), ("gpt-5-pro", "gpt-5")):
        pro_cost, family_cost = estimate_cost(pro, usage, shipped), estimate_cost(family, usage, shipped)
        assert pro_cost is not None and family_cost is not None
        assert pro_cost >= 10 * family_cost
        assert price_for(f"{pro}-2025-06-10", shipped) == shipped[pro]
    # A snapshot priced unlike its family has its own entry, and that entry wins
    assert price_for("gpt-4o-2024-05-13", shipped) != shipped["gpt-4o"]
    assert price_for("gpt-4o-2024-08-06", shipped) == shipped["gpt-4o"]
    # An unlisted variant stays unpriced however close its name
    assert price_for("gpt-5-pro-max", shipped) is None and price_for("o3-pro-mini", shipped) is None


def test_an_unknown_model_has_no_cost_rather_than_zero() -> None:
    assert estimate_cost("someone-elses-model", Usage(prompt_tokens=10, total_tokens=10), PRICES) is None
    assert estimate_cost("m", Usage(), PRICES) == 0


def test_the_shipped_table_prices_the_default_models_and_an_environment_can_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shipped = default_prices()
    assert {"gpt-5-mini", "gpt-4.1-mini"} <= set(shipped)
    assert all(price.cached_input <= price.input for price in shipped.values())
    monkeypatch.setenv(
        "THREADRUNNER_PRICES",
        '{"gpt-5-mini": {"input": 1, "cached_input": 1, "output": 1}, "local-llm": '
        '{"input": 0, "cached_input": 0, "output": 0}}',
    )
    table = CostSettings().price_table
    assert table["gpt-5-mini"] == ModelPrice(input=1, cached_input=1, output=1)
    assert table["local-llm"].output == 0 and table["gpt-4.1"] == shipped["gpt-4.1"]
