"""Decimals in the economics: parsing without floats, rounding for output, unit constants."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any

from tokenomy.money import float_to_decimal

MILLION = Decimal(1_000_000)
HOURS_PER_YEAR = Decimal(8760)
HOURS_PER_MONTH = HOURS_PER_YEAR / 12  # 730: the average month, so 12 months make a year
SECONDS_PER_HOUR = Decimal(3600)
SECONDS_PER_DAY = Decimal(86_400)
OUTPUT_SIG_DIGITS = 10


def to_decimal(value: Any, field: str) -> Decimal:
    """Convert a TOML/CLI value to Decimal, naming ``field`` in the error.

    Floats become the decimal they were written as (``money.float_to_decimal``): TOML's
    ``1.73`` stays ``1.73``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field}: expected a finite number, got {value!r}")
        result = float_to_decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip().replace("_", "").replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"{field}: expected a number, got {value!r}") from None
    else:
        raise ValueError(f"{field}: expected a number, got {type(value).__name__} {value!r}")
    if not result.is_finite():
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return result


def parse_decimal(text: str) -> Decimal:
    """CLI parser: accept ``1.30``, ``1_000`` or ``1,000``; never go through float."""
    return to_decimal(text, "value")


def sig(value: Decimal, digits: int = OUTPUT_SIG_DIGITS) -> Decimal:
    """Round to ``digits`` significant digits and drop trailing zeros, without an exponent.

    Used only for what we print or return as JSON; the arithmetic keeps full precision.
    """
    if value == 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = max(digits + 30, 60)
        quantum = Decimal(1).scaleb(value.adjusted() - digits + 1)
        rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
        return Decimal(format(rounded.normalize(), "f"))


def out(value: Decimal | None, digits: int = OUTPUT_SIG_DIGITS) -> Decimal | None:
    """``sig`` that passes ``None`` through (a metric that cannot be computed)."""
    return None if value is None else sig(value, digits)


def human(value: Decimal | int | None, digits: int = 6) -> str:
    """People's format: 6 significant digits with thousands separators, no exponent."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    rounded = sig(value, digits)
    if rounded == rounded.to_integral_value():
        return f"{int(rounded):,}"
    text = format(rounded, "f")
    whole, _, frac = text.partition(".")
    return f"{int(whole):,}.{frac}" if whole not in ("-0",) else f"-0.{frac}"


def ceil_div(numerator: Decimal, denominator: Decimal) -> int:
    """Smallest integer >= numerator / denominator (for whole GPUs and servers)."""
    quotient = numerator / denominator
    whole = int(quotient.to_integral_value(rounding="ROUND_CEILING"))
    return whole
