"""Budget and rate-limit definitions, and how their amounts read to a person."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from tokenomy.money import decimal_str, nanos_to_usd, usd_to_nanos

SCOPE_KINDS = ("org", "team", "user", "key", "agent")
UNITS = ("usd", "tokens", "requests")
BUDGET = "budget"
RATE_LIMIT = "rate_limit"

# Bounds of every amount a person can set, checked before any arithmetic: a Decimal such as
# 1e999990 is cheap to compare but not to scale or convert to int. Stored amounts are
# BIGINT (< 2**63 ≈ 9.2e18): the largest USD limit is 1e18 nano-USD, which leaves room
# for a period's spend, leases and transfers to add up without overflowing.
MAX_USD = Decimal(1_000_000_000)
MAX_COUNT = 1_000_000_000_000_000  # tokens or requests, per period (or per minute)
MAX_NAME = 200  # characters of a scope's name (org, team, user, key id, agent)
MAX_ALERTS = 10
_NANO = Decimal("1e-9")
# Characters no name may hold: control characters (NUL above all: PostgreSQL text cannot
# hold it, and a name with a line break makes every report that prints it ambiguous).
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")


def check_name(what: str, value: str) -> str:
    """``value`` if it can name an org, team, user, key or agent; ValueError otherwise."""
    if len(value) > MAX_NAME:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {MAX_NAME}")
    if _BAD_NAME.search(value):
        raise ValueError(f"{what} may not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode text (a lone surrogate)") from exc
    return value


def parse_scope(text: str) -> tuple[str, str]:
    """``team:research`` → ("team", "research"), with a clear error otherwise."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in SCOPE_KINDS or not value:
        raise ValueError(
            f"scope must be one of {', '.join(k + ':NAME' for k in SCOPE_KINDS)}; "
            f"got {_show_text(text)}"
        )
    check_name(f"the name in scope {kind}:", value)
    return kind, value


def _show_text(text: str) -> str:
    """``text`` quoted for a message, cut short: messages never echo a whole body."""
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def _show(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{value:.6E}"


def parse_decimal(text: str, what: str = "amount") -> Decimal:
    """A decimal number from text (``"500"``, ``"12.5"``), with a clear error otherwise."""
    try:
        return Decimal(text.strip())
    except ArithmeticError as exc:
        raise ValueError(f"{what}: {_show_text(text)} is not a number") from exc


def to_amount(unit: str, value: Decimal | int) -> int:
    """User-facing limit → stored integer (nano-USD, tokens or requests).

    Range-checked before any scaling: finite, not negative, at most ``MAX_USD`` dollars
    or ``MAX_COUNT`` tokens/requests. USD amounts round half-even to whole nano-USD.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"a {unit} amount must be a number")
    if isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"a {unit} amount must be a finite number, got {value}")
    if value < 0:
        raise ValueError(f"a {unit} amount cannot be negative, got {_show(value)}")
    high = MAX_USD if unit == "usd" else Decimal(MAX_COUNT)
    if value > high:
        raise ValueError(f"a {unit} amount can be at most {high:,}, got {_show(value)}")
    # From here |value| <= 1e15 (or 1e9 USD): quantize and int() are cheap and exact.
    if unit == "usd":
        return usd_to_nanos(value.quantize(_NANO, rounding=ROUND_HALF_EVEN))
    if value != value.to_integral_value():
        raise ValueError(f"a {unit} amount must be a whole number, got {_show(value)}")
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
    """``0.5,0.8,1`` or ``50%,80%`` → thresholds as fractions of the limit (0 < t <= 10)."""
    if not text:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = Decimal(part.rstrip("%"))
        except ArithmeticError as exc:
            raise ValueError(f"alert threshold {_show_text(part)} is not a number") from exc
        # Checked before dividing or comparing: NaN cannot be compared, 1e999999 is fine.
        if not value.is_finite() or not 0 < value <= 1000:
            raise ValueError(
                f"alert threshold {_show_text(part)} must be a fraction of the limit "
                "above 0 and at most 10, e.g. 0.8 (or 80%)"
            )
        value = value / (100 if part.endswith("%") else 1)
        if not 0 < value <= 10:
            raise ValueError(
                f"alert threshold {_show_text(part)} must be a fraction of the limit "
                "above 0 and at most 10, e.g. 0.8 (or 80%)"
            )
        # Spend is compared with thresholds in whole units: finer than 9 places means nothing.
        if int(value.as_tuple().exponent) < -9:
            value = value.quantize(_NANO, rounding=ROUND_HALF_EVEN)
        out.append(value)
    thresholds = tuple(sorted(set(out)))
    if len(thresholds) > MAX_ALERTS:
        raise ValueError(f"at most {MAX_ALERTS} alert thresholds, got {len(thresholds)}")
    if thresholds and thresholds[0] <= 0:
        raise ValueError("alert thresholds must be above 0 (after rounding to 9 places)")
    return thresholds
