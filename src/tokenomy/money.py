"""Money: Decimal USD in Python, integer nano-USD in storage. Never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANOS_PER_USD = 1_000_000_000
_NANO = Decimal("0.000000001")
MTOK = 1_000_000


def float_to_decimal(value: float) -> Decimal:
    """A float from TOML or JSON as the decimal it was written as: ``0.1`` stays ``0.1``.

    Its shortest ``repr`` round-trips, unlike ``Decimal(0.1)`` (the binary value,
    ``0.1000000000000000055511151231257827...``).
    """
    return Decimal(repr(value))


def usd_to_nanos(usd: Decimal) -> int:
    """Round a USD amount to whole nano-dollars (banker's rounding, as accountants expect)."""
    return int((usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> Decimal:
    """Exact USD amount for an integer number of nano-dollars."""
    return (Decimal(nanos) / NANOS_PER_USD).quantize(_NANO)


def format_usd(usd: Decimal, places: int = 6) -> str:
    """Human display: fixed places, no exponent (Decimal('1E-7') would print oddly)."""
    quantum = Decimal(1).scaleb(-places)
    return f"${usd.quantize(quantum, rounding=ROUND_HALF_EVEN):,.{places}f}"


def decimal_str(usd: Decimal) -> str:
    """Plain decimal literal without exponent or trailing zeros, for JSON/CSV/headers."""
    text = format(usd.normalize(), "f")
    return text if text != "-0" else "0"


def nanos_str(nanos: int) -> str:
    """Exact USD decimal string of integer nano-dollars, by integer arithmetic (hot path)."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS_PER_USD)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:09d}".rstrip("0")
