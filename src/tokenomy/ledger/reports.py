"""Usage reports, written once against the store interface (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tokenomy.ledger.schema import REPORT_GROUPS
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

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, end_of_day: bool = False, now: datetime | None = None) -> int:
    """Epoch ms from ``YYYY-MM-DD``, an ISO 8601 timestamp, or a relative ``30m/24h/7d/2w``.

    A bare date means the start of that UTC day, or (``end_of_day``, for ``--until``)
    the start of the next one, so ``--until 2026-11-28`` includes the 28th.
    """
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        base = now or datetime.now(UTC)
        return int((base - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})).timestamp() * 1000)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return int((start + timedelta(days=1 if end_of_day else 0)).timestamp() * 1000)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"cannot read {text!r} as a date (YYYY-MM-DD), an ISO timestamp or a "
            "relative time such as 24h or 7d"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_fields(text: str | None) -> list[str]:
    if not text:
        return []
    fields = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in fields if f not in REPORT_GROUPS]
    if bad:
        raise ValueError(f"unknown field(s) {', '.join(bad)}; use {', '.join(REPORT_GROUPS)}")
    return fields


def usage_report(
    store: Store,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    by: Sequence[str] = (),
    filters: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Totals per group; ``cost_usd`` is an exact Decimal summed from integer nano-USD."""
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
