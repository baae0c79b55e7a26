"""Budget status as people and programs read it: limit, spent, reserved, remaining, when
the period resets and when, at the recent burn rate, the budget would run out."""

from __future__ import annotations

from typing import Any

from tokenomy import clock
from tokenomy.budgets import storage
from tokenomy.budgets.model import from_amount
from tokenomy.budgets.periods import iso_utc
from tokenomy.ledger.store import Store

BURN_WINDOW_MS = 24 * 3600 * 1000
_SCOPE_FILTER = {"org": "org", "team": "team", "user": "user", "key": "key", "agent": "agent"}


def burn_per_day(store: Store, scope: str, unit: str, now_ms: int) -> int:
    """What the scope consumed in the last 24 hours, in the budget's unit (the ledger's view)."""
    kind, _, value = scope.partition(":")
    rows = store.aggregate(now_ms - BURN_WINDOW_MS, now_ms, [], {_SCOPE_FILTER[kind]: value})
    if not rows:
        return 0
    r = rows[0]
    if unit == "usd":
        return int(r["cost_nanos"])
    if unit == "tokens":
        return int(r["input_tokens"]) + int(r["output_tokens"])
    return int(r["requests"])


def budget_rows(
    store: Store,
    *,
    kind: str | None = None,
    tz: str = "UTC",
    team: str | None = None,
    now_ms: int | None = None,
) -> list[dict[str, Any]]:
    """One row per budget (optionally only those on ``team:TEAM`` for a team admin)."""
    now = now_ms if now_ms is not None else clock.now_ms()
    budgets = storage.list_budgets(store, kind)
    if team is not None:
        budgets = [b for b in budgets if b.scope == f"team:{team}"]
    rows = []
    for st in storage.status(store, budgets, tz, now):
        b = st.budget
        burn = burn_per_day(store, b.scope, b.unit, now)
        remaining = st.remaining
        exhausted_ms: int | None = None
        if remaining <= 0:
            exhausted_ms = now
        elif burn > 0:
            exhausted_ms = now + remaining * 86_400_000 // burn
        rows.append(
            {
                "scope": b.scope,
                "kind": b.kind,
                "unit": b.unit,
                "hard": b.hard,
                "period": b.period,
                "limit": from_amount(b.unit, b.limit),
                "spent": from_amount(b.unit, st.spent),
                "reserved": from_amount(b.unit, st.reserved),
                "remaining": from_amount(b.unit, remaining),
                "period_end": iso_utc(st.period_end),
                "burn_per_day": from_amount(b.unit, burn),
                "projected_exhaustion": None if exhausted_ms is None else iso_utc(exhausted_ms),
                "runs_out_before_reset": exhausted_ms is not None and exhausted_ms < st.period_end,
                "alerts": ",".join(str(a) for a in b.alerts),
            }
        )
    return rows
