"""Linear pricing as providers state it, price limits, and how proposals are scored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

PRICING_MODEL = "golem.com.pricing.model"
LINEAR_COEFFS = "golem.com.pricing.model.linear.coeffs"
USAGE_VECTOR = "golem.com.usage.vector"
CPU_SEC = "golem.usage.cpu_sec"
DURATION_SEC = "golem.usage.duration_sec"
HOUR = Decimal(3600)


@dataclass(frozen=True)
class LinearPrice:
    """Cost = start + cpu_sec * cpu seconds + env_sec * duration seconds."""

    start: Decimal
    cpu_sec: Decimal
    env_sec: Decimal

    @property
    def cpu_per_hour(self) -> Decimal:
        return self.cpu_sec * HOUR

    @property
    def env_per_hour(self) -> Decimal:
        return self.env_sec * HOUR

    def score(self) -> Decimal:
        """Estimated cost of a reference hour of one busy cpu: lower is better."""
        return self.start + self.cpu_per_hour + self.env_per_hour


def _decimal(value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise ValueError(f"not a price: {value!r}")
    return result


def property_value(properties: Mapping[str, Any], key: str) -> Any:
    """A property by dotted key, whether the dict is flat or nested (``None`` if absent)."""
    return _flat(properties, key)


def _flat(properties: Mapping[str, Any], key: str) -> Any:
    """A property by dotted key, whether the dict is flat or nested."""
    if key in properties:
        return properties[key]
    node: Any = properties
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def linear_price(properties: Mapping[str, Any]) -> LinearPrice:
    """Read a provider's linear pricing; ``ValueError`` when it is not linear or malformed."""
    model = _flat(properties, PRICING_MODEL)
    if model != "linear":
        raise ValueError(f"pricing model {model!r} is not 'linear'")
    coeffs = _flat(properties, LINEAR_COEFFS)
    vector = _flat(properties, USAGE_VECTOR)
    if not isinstance(coeffs, list) or not isinstance(vector, list):
        raise ValueError("linear pricing without coefficients or usage vector")
    if len(coeffs) != len(vector) + 1:
        raise ValueError(f"{len(coeffs)} coefficients for a usage vector of {len(vector)}")
    per_usage = {name: _decimal(c) for name, c in zip(vector, coeffs[:-1], strict=True)}
    return LinearPrice(
        start=_decimal(coeffs[-1]),
        cpu_sec=per_usage.get(CPU_SEC, Decimal(0)),
        env_sec=per_usage.get(DURATION_SEC, Decimal(0)),
    )


@dataclass(frozen=True)
class PriceLimits:
    """The most a run pays per start, per cpu hour and per hour of duration (None: any)."""

    max_start: Decimal | None = None
    max_cpu_per_hour: Decimal | None = None
    max_env_per_hour: Decimal | None = None

    def violation(self, price: LinearPrice) -> str | None:
        """Why ``price`` is over the limits, or ``None`` when it is within them."""
        checks = (
            ("start price", price.start, self.max_start),
            ("cpu price per hour", price.cpu_per_hour, self.max_cpu_per_hour),
            ("env price per hour", price.env_per_hour, self.max_env_per_hour),
        )
        for what, value, limit in checks:
            if limit is not None and value > limit:
                return f"{what} {value.normalize()} over the limit {limit.normalize()}"
        return None

    def as_json(self) -> dict[str, str | None]:
        return {
            "max_start": _text(self.max_start),
            "max_cpu_per_hour": _text(self.max_cpu_per_hour),
            "max_env_per_hour": _text(self.max_env_per_hour),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
