"""Budget status as people and programs read it: limit, spent, reserved, remaining, when
the period resets and when the budget would run out.

One truth for both ``tokenomy budgets list`` and ``tokenomy forecast``:

* spent in the period = ``max(booked by the gateways, the ledger's sum for the scope
  since the period began)`` (a budget created mid-period, imported history, a process that
  died before flushing: the ledger has it all); ``as_of`` a past instant, the ledger alone;
* the run-out date = ``outlook``: the economics forecast of the scope's daily spend over the
  last ``OUTLOOK_HISTORY_DAYS`` full UTC days, what is left of today pro rata, then day by
  day to the end of the period (``tokenomy.economics.forecast.project_budget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tokenomy import clock
from tokenomy.budgets import storage
from tokenomy.budgets.model import Budget, from_amount
from tokenomy.budgets.periods import iso_utc
from tokenomy.ledger.store import Store

BURN_WINDOW_MS = 24 * 3600 * 1000
DAY_MS = 86_400_000
OUTLOOK_HISTORY_DAYS = 28
_SCOPE_FILTER = {"org": "org", "team": "team", "user": "user", "key": "key", "agent": "agent"}


def burn_per_day(store: Store, scope: str, unit: str, now_ms: int) -> int:
    """What the scope consumed in the last 24 hours, in the budget's unit (the ledger's view)."""
    kind, _, value = scope.partition(":")
    rows = store.aggregate(now_ms - BURN_WINDOW_MS, now_ms, [], {_SCOPE_FILTER[kind]: value})
    if not rows:
        return 0
    return _in_unit(rows[0], unit)


def _in_unit(row: dict[str, Any], unit: str) -> int:
    if unit == "usd":
        return int(row["cost_nanos"])
    if unit == "tokens":
        return int(row["input_tokens"]) + int(row["output_tokens"])
    return int(row["requests"])


@dataclass(frozen=True, slots=True)
class Outlook:
    """A budget's period: spend so far (ledger truth) and its projection to the reset."""

    budget: Budget
    period_start: int
    period_end: int
    spent: int
    reserved: int
    flag: Any | None  # economics.forecast.BudgetFlag (None: no usage to forecast)
    forecast: Any | None  # the SeriesForecast behind the flag
    note: str = ""

    @property
    def remaining(self) -> int:
        return self.budget.limit - self.spent - self.reserved

    @property
    def exhausted_on(self) -> date | None:
        """The day the projection reaches the limit (None: not before the reset, or unknown)."""
        return None if self.flag is None else self.flag.exhausted_on


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def _midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def outlooks(
    store: Store,
    budgets: list[Budget],
    *,
    tz: str = "UTC",
    now_ms: int | None = None,
    as_of: bool = False,
    level: float = 0.95,
    history_days: int = OUTLOOK_HISTORY_DAYS,
) -> list[Outlook]:
    """Spend and run-out projection of each budget (the one model both commands use).

    ``as_of``: ``now_ms`` is a past instant; the spend is the ledger's up to it (the
    gateways' counters hold the whole period, later spend included).
    """
    from tokenomy.economics.forecast import (
        BudgetToProject,
        daily_series,
        forecast_series,
        project_budget,
    )

    now = now_ms if now_ms is not None else clock.now_ms()
    today = _day(now)
    start_day = today - timedelta(days=history_days)
    out: list[Outlook] = []
    for st in storage.status(store, budgets, tz, now):
        b = st.budget
        spent, reserved = st.spent, st.reserved
        if b.kind == "budget":
            booked = storage.ledger_spend(store, b.scope, b.unit, st.period_start, now + 1)
            spent = booked if as_of else max(st.spent, booked)
            reserved = 0 if as_of else st.reserved
        flag = fc = None
        note = ""
        kind, _, value = b.scope.partition(":")
        if b.kind == "budget" and b.unit == "requests":
            note = f"{b.scope} (requests): request budgets are not projected"
        elif b.kind == "budget" and kind in _SCOPE_FILTER:
            rows = store.aggregate(
                _midnight_ms(start_day), _midnight_ms(today), ["day"], {_SCOPE_FILTER[kind]: value}
            )
            metric = "cost" if b.unit == "usd" else "tokens"
            series = daily_series(rows, [], start_day, today - timedelta(days=1))
            end_ms = st.period_end
            period_last = _day(end_ms - 1) if end_ms < 2**62 else today + timedelta(days=3650)
            target = BudgetToProject(
                {kind: value},
                "usd" if b.unit == "usd" else "tokens",
                Decimal(from_amount(b.unit, b.limit)),
                Decimal(from_amount(b.unit, spent)),
                _day(st.period_start),
                period_last,
                b.scope,
            )
            left = Decimal(_midnight_ms(today + timedelta(days=1)) - now) / DAY_MS
            try:
                if not series:
                    raise ValueError("no usage in the last days to forecast")
                fc = forecast_series(series[0], metric, 0, level)  # type: ignore[arg-type]
                flag = project_budget(target, fc, today, today_left=left)
            except ValueError as exc:
                note = f"{b.scope} ({b.unit}): no projection ({exc})"
        out.append(Outlook(b, st.period_start, st.period_end, spent, reserved, flag, fc, note))
    return out


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
    for o in outlooks(store, budgets, tz=tz, now_ms=now):
        b = o.budget
        burn = burn_per_day(store, b.scope, b.unit, now)
        exhausted = o.exhausted_on
        if o.remaining <= 0:
            exhausted = _day(now)
        runs_out = exhausted is not None and _midnight_ms(exhausted) < o.period_end
        rows.append(
            {
                "scope": b.scope,
                "kind": b.kind,
                "unit": b.unit,
                "hard": b.hard,
                "period": b.period,
                "limit": from_amount(b.unit, b.limit),
                "spent": from_amount(b.unit, o.spent),
                "reserved": from_amount(b.unit, o.reserved),
                "remaining": from_amount(b.unit, o.remaining),
                "period_end": iso_utc(o.period_end),
                "burn_per_day": from_amount(b.unit, burn),
                "projected_exhaustion": None if exhausted is None else exhausted.isoformat(),
                "runs_out_before_reset": runs_out,
                "alerts": ",".join(str(a) for a in b.alerts),
            }
        )
    return rows
