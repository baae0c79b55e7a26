"""Calendar-aligned budget periods in a configured time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("minute", "day", "week", "month", "year", "total")
TOTAL_END_MS = 2**62  # "never resets"


def period_bounds(period: str, now_ms: int, tz: str = "UTC") -> tuple[int, int]:
    """(start_ms, end_ms) of the period containing ``now_ms``; weeks start on Monday."""
    if period == "total":
        return 0, TOTAL_END_MS
    zone = ZoneInfo(tz)
    now = datetime.fromtimestamp(now_ms / 1000, zone)
    if period == "minute":
        start = now.replace(second=0, microsecond=0)
        end = start + timedelta(minutes=1)
    elif period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = _midnight(start.date() + timedelta(days=1), zone)
    elif period == "week":
        day = now.date() - timedelta(days=now.weekday())
        start = _midnight(day, zone)
        end = _midnight(day + timedelta(days=7), zone)
    elif period == "month":
        start = _midnight(now.date().replace(day=1), zone)
        nxt = (now.date().replace(day=28) + timedelta(days=4)).replace(day=1)
        end = _midnight(nxt, zone)
    elif period == "year":
        start = _midnight(now.date().replace(month=1, day=1), zone)
        end = _midnight(now.date().replace(year=now.year + 1, month=1, day=1), zone)
    else:
        raise ValueError(f"unknown period {period!r}; use {', '.join(PERIODS)}")
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def iso_utc(ms: int, timespec: str = "seconds") -> str | None:
    """``2026-12-01T00:00:00Z`` for an epoch-ms instant; None for "never" (a total budget)."""
    if ms >= TOTAL_END_MS:
        return None
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec=timespec)
    return text.replace("+00:00", "Z")


def _midnight(day: object, zone: ZoneInfo) -> datetime:
    # Building from the date (not adding 24 h) keeps days right across DST changes.
    return datetime(day.year, day.month, day.day, tzinfo=zone)  # type: ignore[attr-defined]
