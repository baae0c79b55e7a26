"""Budget and rate-limit definitions, and how their amounts read to a person."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tokenomy.money import NANOS_PER_USD, decimal_str, nanos_to_usd

SCOPE_KINDS = ("org", "team", "user", "key", "agent")
UNITS = ("usd", "tokens", "requests")
BUDGET = "budget"
RATE_LIMIT = "rate_limit"


def parse_scope(text: str) -> tuple[str, str]:
    """``team:research`` → ("team", "research"), with a clear error otherwise."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in SCOPE_KINDS or not value:
        raise ValueError(
            f"scope must be one of {', '.join(k + ':NAME' for k in SCOPE_KINDS)}; got {text!r}"
        )
    return kind, value


def to_amount(unit: str, value: Decimal) -> int:
    """User-facing limit → stored integer (nano-USD, tokens or requests)."""
    if unit == "usd":
        return int(value * NANOS_PER_USD)
    if value != value.to_integral_value():
        raise ValueError(f"a {unit} limit must be a whole number, got {value}")
    return int(value)


def from_amount(unit: str, amount: int) -> Decimal | int:
    return nanos_to_usd(amount) if unit == "usd" else amount


def show_amount(unit: str, amount: int) -> str:
    if unit == "usd":
        return "$" + decimal_str(nanos_to_usd(amount))
    return f"{amount:,} {unit}"


@dataclass(frozen=True, slots=True)
class Budget:
    """One limit on one scope. Rate limits are hard budgets over a one-minute period."""

    id: str
    kind: str  # BUDGET | RATE_LIMIT
    scope: str  # "team:research"
    unit: str  # usd | tokens | requests
    limit: int  # nano-USD, tokens or requests
    period: str
    hard: bool
    alerts: tuple[Decimal, ...] = ()

    @property
    def scope_kind(self) -> str:
        return self.scope.partition(":")[0]

    @property
    def label(self) -> str:
        what = "rate limit" if self.kind == RATE_LIMIT else "budget"
        per = "" if self.period == "total" else f" per {self.period}"
        return f"{what} {self.scope} ({show_amount(self.unit, self.limit)}{per})"


def budget_id(kind: str, scope: str, unit: str) -> str:
    return f"{kind}/{scope}/{unit}"


def parse_alerts(text: str | None) -> tuple[Decimal, ...]:
    """``0.5,0.8,1`` → thresholds as fractions of the limit."""
    if not text:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = Decimal(part.rstrip("%")) / (100 if part.endswith("%") else 1)
        except ArithmeticError as exc:
            raise ValueError(f"alert threshold {part!r} is not a number") from exc
        if not 0 < value <= 10:
            raise ValueError(f"alert threshold {part!r} must be a fraction of the limit, e.g. 0.8")
        out.append(value)
    return tuple(sorted(set(out)))
