from __future__ import annotations

import random
from decimal import Decimal

from tokenomy.money import decimal_str, format_usd, nanos_str, nanos_to_usd, usd_to_nanos


def test_nanos_round_trip_and_bankers_rounding() -> None:
    assert usd_to_nanos(Decimal("0.0075")) == 7_500_000
    assert usd_to_nanos(Decimal("0.0000000005")) == 0  # half to even
    assert usd_to_nanos(Decimal("0.0000000015")) == 2
    assert nanos_to_usd(300_000_003) == Decimal("0.300000003")
    assert format_usd(Decimal("1234.5")) == "$1,234.500000"


def test_nanos_str_is_the_exact_decimal() -> None:
    rng = random.Random(7)
    cases = [0, 1, 5_100, 10**9, 10**9 + 1, 999_999_999, -5, 123_456_789_012]
    cases += [rng.randrange(10**15) for _ in range(2_000)]
    for n in cases:
        assert nanos_str(n) == decimal_str(nanos_to_usd(n))
        assert Decimal(nanos_str(n)) * 10**9 == n
