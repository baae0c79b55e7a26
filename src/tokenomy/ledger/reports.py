"""Usage reports, written once against the store interface (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tokenomy.ledger.schema import GROUP_FIELDS, REPORT_GROUPS
from tokenomy.ledger.store import Store
from tokenomy.money import nanos_to_usd

USAGE_COLUMNS = (
    "requests",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "estimated_requests",
    "unpriced_requests",
)

# What --since/--until and ?since=/?until= accept. Everything is parsed with integer
# arithmetic on the fields themselves, never via datetime (whose range ends at 9999-12-31,
# so "until 9999-12-31" — the next midnight — used to overflow), and every field is
# range-checked: the result always lies between the years 0 and 10000.
MAX_TIME_CHARS = 64
_RELATIVE = re.compile(r"([0-9]{1,6})([mhdw])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HELP = "a date (YYYY-MM-DD), an ISO 8601 time or a relative time such as 24h, 7d or 2w"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year; H. Hinnant)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _date_days(text: str, y: str, m: str, d: str) -> int:
    year, month, day = int(y), int(m), int(d)
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r}: month {month} is not 1-12")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    last = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    if not 1 <= day <= last:
        raise ValueError(f"{text!r}: day {day} is not 1-{last} in that month")
    return _days_from_civil(year, month, day)


def _offset_ms(text: str, tz: str | None) -> int:
    if not tz or tz in "Zz":
        return 0
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r}: the UTC offset {tz} is out of range")
    return (1 if tz[0] == "+" else -1) * (hours * 60 + minutes) * 60_000


def parse_time(text: str, *, end_of_day: bool = False, now: datetime | None = None) -> int:
    """Epoch ms from ``YYYY-MM-DD``, an ISO 8601 timestamp, or a relative ``30m/24h/7d/2w``.

    A bare date means the start of that UTC day, or (``end_of_day``, for ``--until``)
    the start of the next one, so ``--until 2026-11-28`` includes the 28th. A timestamp
    without an offset is UTC. A relative time takes at most 6 digits (999999w is already
    ~19,000 years back). Anything else is a ValueError saying what was expected.
    """
    text = text.strip()
    if len(text) > MAX_TIME_CHARS:
        raise ValueError(f"a time is at most {MAX_TIME_CHARS} characters: {_HELP}")
    if m := _RELATIVE.fullmatch(text):
        base = now or datetime.now(UTC)
        now_ms = (base - _EPOCH) // timedelta(milliseconds=1)
        return now_ms - int(m.group(1)) * _UNIT_MS[m.group(2)]
    if m := _DATE.fullmatch(text):
        days = _date_days(text, *m.groups())
        return (days + (1 if end_of_day else 0)) * _DAY_MS
    if m := _DATETIME.fullmatch(text):
        y, mo, d, hh, mm, ss, frac, tz = m.groups()
        hour, minute, second = int(hh), int(mm), int(ss or 0)
        # 23:59:60 is a leap second (RFC 3339): read as the next second, like most clocks.
        if hour > 23 or minute > 59 or second > 60:
            raise ValueError(f"{text!r}: the time of day {hh}:{mm}:{ss or '00'} is out of range")
        ms = int((frac or "")[:3].ljust(3, "0"))
        day_ms = ((hour * 60 + minute) * 60 + second) * 1000 + ms
        return _date_days(text, y, mo, d) * _DAY_MS + day_ms - _offset_ms(text, tz)
    if re.fullmatch(r"[0-9]+[mhdw]", text):
        raise ValueError(
            f"a relative time takes at most 6 digits (999999w is ~19,000 years); got {text[:20]!r}"
        )
    try:  # other ISO 8601 spellings Python reads, e.g. 20261101T1000
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return (dt - _EPOCH) // timedelta(milliseconds=1)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"cannot read {text!r} as {_HELP}") from exc


# ?where= / --where values: what the ledger can hold and compare.
MAX_FILTER_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STATUS = re.compile(r"[0-9]{1,3}")


def check_filter(name: str, value: str) -> None:
    """Raise ValueError unless ``name = value`` is a filter the ledger can answer."""
    if name not in GROUP_FIELDS:
        raise ValueError(
            f"where: cannot filter on {name[:40]!r}; use one of {', '.join(GROUP_FIELDS)}"
        )
    if name == "status":
        if not _STATUS.fullmatch(value):
            raise ValueError(
                f"where: status= takes an HTTP status (1-3 digits), got {value[:40]!r}"
            )
        return
    if len(value) > MAX_FILTER_CHARS:
        raise ValueError(f"where: {name}= takes at most {MAX_FILTER_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError(f"where: {name}= may not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"where: {name}= is not valid Unicode text") from exc


def parse_where(items: Sequence[str]) -> dict[str, str]:
    """``["team=research", "status=200"]`` → filters, each checked (ValueError otherwise).

    The one parser of ``--where`` and ``?where=``; its messages start with ``where:``.
    """
    filters: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(
                f"where: takes FIELD=VALUE with FIELD one of {', '.join(GROUP_FIELDS)}; "
                f"got {item[:60]!r}"
            )
        name, value = name.strip(), value.strip()
        check_filter(name, value)
        filters[name] = value
    return filters


def parse_fields(text: str | None) -> list[str]:
    if not text:
        return []
    fields = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f[:40] for f in fields if f not in REPORT_GROUPS]
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise ValueError(f"unknown field(s) {shown}; use {', '.join(REPORT_GROUPS)}")
    return fields


def usage_report(
    store: Store,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    by: Sequence[str] = (),
    filters: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Totals per group; ``cost_usd`` is an exact Decimal summed from integer nano-USD.

    Filters are checked first (ValueError), so a bad one never reaches the database.
    """
    for name, value in (filters or {}).items():
        check_filter(name, value)
    rows = store.aggregate(since_ms, until_ms, list(by), filters)
    out: list[dict[str, Any]] = []
    for r in rows:
        rec = {name: r[name] for name in by}
        rec.update(
            {
                "requests": r["requests"],
                "input_tokens": r["input_tokens"],
                "cached_tokens": r["cached_tokens"],
                "cache_write_tokens": r["cache_write_tokens"],
                "output_tokens": r["output_tokens"],
                "reasoning_tokens": r["reasoning_tokens"],
                "cost_usd": nanos_to_usd(r["cost_nanos"]),
                "estimated_requests": r["estimated_requests"],
                "unpriced_requests": r["unpriced_requests"],
            }
        )
        out.append(rec)
    return out
