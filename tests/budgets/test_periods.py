from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tokenomy.budgets.periods import TOTAL_END_MS, period_bounds


def _ms(text: str, tz: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("minute", "2026-11-28T13:47:00", "2026-11-28T13:48:00"),
        ("day", "2026-11-28T00:00:00", "2026-11-29T00:00:00"),
        ("week", "2026-11-23T00:00:00", "2026-11-30T00:00:00"),  # Monday to Monday
        ("month", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        ("year", "2026-01-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_calendar_periods_utc(period: str, start: str, end: str) -> None:
    assert period_bounds(period, _ms("2026-11-28T13:47:12")) == (_ms(start), _ms(end))


def test_december_rolls_into_next_year_and_total_never_resets() -> None:
    assert period_bounds("month", _ms("2026-12-31T23:59:59")) == (
        _ms("2026-12-01T00:00:00"),
        _ms("2027-01-01T00:00:00"),
    )
    assert period_bounds("total", _ms("2026-12-31T23:59:59")) == (0, TOTAL_END_MS)


def test_time_zone_and_dst() -> None:
    tz = "America/New_York"
    # 2026-11-01 is the DST change in New York: that day has 25 hours.
    start, end = period_bounds("day", _ms("2026-11-01T12:00:00", tz), tz)
    assert (start, end) == (_ms("2026-11-01T00:00:00", tz), _ms("2026-11-02T00:00:00", tz))
    assert end - start == 25 * 3600 * 1000
    # 23:30 in New York on the 27th is already the 28th in UTC; the day is New York's.
    start, _ = period_bounds("day", _ms("2026-11-27T23:30:00", tz), tz)
    assert start == _ms("2026-11-27T00:00:00", tz)


def test_unknown_period() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        period_bounds("fortnight", 0)
