"""Showing USD amounts in another currency, at a dated rate the operator wrote down.

Stored money is always USD (integer nano-USD in the ledger); only reports convert, and every
converted figure says which rate of which day it used. Rates come from the config, never from
the network::

    [currency]
    date = 2026-11-30        # the day the rates were taken
    source = "PBOC central parity"   # optional: where they come from
    CNY = "7.10"             # units of CNY per 1 USD
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

USD = "USD"
_CODE = re.compile(r"[A-Z]{3}")
_MAX_RATE = Decimal(1_000_000)  # no currency is worth a millionth of a dollar


@dataclass(frozen=True, slots=True)
class Rates:
    """Units of each currency per 1 USD, as of ``date``."""

    date: dt.date | None = None
    source: str = ""
    per_usd: dict[str, Decimal] = field(default_factory=dict)

    def codes(self) -> list[str]:
        return [USD, *sorted(self.per_usd)]

    def rate(self, currency: str) -> Decimal:
        """Units of ``currency`` per USD (1 for USD); ``ValueError`` when none is configured."""
        code = currency.upper()
        if code == USD:
            return Decimal(1)
        rate = self.per_usd.get(code)
        if rate is None:
            known = ", ".join(self.codes())
            raise ValueError(
                f"no exchange rate for {code!r}: add it to the config's [currency] table "
                f'(e.g. {code} = "7.10" with date = {dt.date.today().isoformat()}); '
                f"configured: {known}"
            )
        return rate

    def convert(self, usd: Decimal, currency: str, places: int = 6) -> Decimal:
        """``usd`` in ``currency``, rounded half-even to ``places`` decimals."""
        exact = usd * self.rate(currency)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)

    def label(self, currency: str) -> str:
        """What a report prints under converted figures: the rate, its day and its source."""
        code = currency.upper()
        if code == USD:
            return "amounts in USD (as stored)"
        rate = self.rate(code)
        when = self.date.isoformat() if self.date else "undated"
        source = f", {self.source}" if self.source else ""
        return f"amounts in {code} at {rate} {code}/USD (rate of {when}{source}; stored in USD)"


def parse_rates(table: dict[str, Any]) -> Rates:
    """The ``[currency]`` table: ``date``, optional ``source``, and ``CODE = "rate"`` pairs.

    Raises:
        ValueError: with the key at fault (the config loader adds the file and section).
    """
    date: dt.date | None = None
    source = ""
    per_usd: dict[str, Decimal] = {}
    for key, value in table.items():
        if key == "date":
            if isinstance(value, dt.datetime):
                value = value.date()
            if isinstance(value, str):
                try:
                    value = dt.date.fromisoformat(value)
                except ValueError as exc:
                    raise ValueError(f"date: not a YYYY-MM-DD date ({value!r})") from exc
            if not isinstance(value, dt.date):
                raise ValueError(f"date: not a date ({value!r})")
            date = value
        elif key == "source":
            if not isinstance(value, str) or len(value) > 200:
                raise ValueError("source: must be a text of at most 200 characters")
            source = value
        elif _CODE.fullmatch(key) and key != USD:
            per_usd[key] = _rate(key, value)
        else:
            raise ValueError(
                f"{key}: unknown key (expected date, source, or a 3-letter currency code)"
            )
    if per_usd and date is None:
        raise ValueError("date: required with exchange rates (the day the rates were taken)")
    return Rates(date, source, per_usd)


def _rate(key: str, value: Any) -> Decimal:
    # Rates are written as strings ("7.10") so that no float ever rounds them; an int is
    # exact too. A float is refused rather than silently turned into 7.0999999...
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'{key}: write the rate as a string, e.g. {key} = "7.10"')
    try:
        rate = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{key}: not a number ({value!r})") from exc
    if not rate.is_finite() or rate <= 0 or rate > _MAX_RATE:
        raise ValueError(f"{key}: must be a positive number of units per USD (got {value!r})")
    return rate
