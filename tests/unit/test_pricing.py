from __future__ import annotations

from decimal import Decimal

import pytest

from golem_tasks.pricing import PriceLimits, linear_price

OFFER = {
    "golem.com.pricing.model": "linear",
    "golem.com.usage.vector": ["golem.usage.duration_sec", "golem.usage.cpu_sec"],
    "golem.com.pricing.model.linear.coeffs": [0.0001, 0.0002, 0.01],
}


def test_linear_price_follows_the_usage_vector_order() -> None:
    price = linear_price(OFFER)
    assert price.env_sec == Decimal("0.0001") and price.cpu_sec == Decimal("0.0002")
    assert price.start == Decimal("0.01")
    assert price.score() == Decimal("0.01") + Decimal("0.36") + Decimal("0.72")


def test_nested_properties_are_read_too() -> None:
    nested = {
        "golem": {
            "com": {
                "pricing": {"model": {"@tag": "x"}},
            }
        }
    }
    with pytest.raises(ValueError):
        linear_price(nested)


@pytest.mark.parametrize(
    "change",
    [
        {"golem.com.pricing.model": "fixed"},
        {"golem.com.pricing.model.linear.coeffs": [1, 2]},
        {"golem.com.pricing.model.linear.coeffs": [1, "x", 3]},
        {"golem.com.pricing.model.linear.coeffs": [1, -2, 3]},
        {"golem.com.usage.vector": None},
    ],
)
def test_malformed_pricing_is_refused(change: dict) -> None:
    with pytest.raises(ValueError):
        linear_price({**OFFER, **change})


def test_limits_name_what_is_over() -> None:
    price = linear_price(OFFER)
    assert PriceLimits().violation(price) is None
    assert "start price" in str(PriceLimits(max_start=Decimal("0.001")).violation(price))
    assert "cpu price" in str(PriceLimits(max_cpu_per_hour=Decimal("0.5")).violation(price))
    assert "env price" in str(PriceLimits(max_env_per_hour=Decimal("0.1")).violation(price))
    assert PriceLimits(Decimal(1), None, Decimal(2)).as_json() == {
        "max_start": "1",
        "max_cpu_per_hour": None,
        "max_env_per_hour": "2",
    }
