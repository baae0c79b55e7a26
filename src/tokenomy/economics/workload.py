"""A workload as the ledger saw it: demand, mix, what it really cost, where it is heading.

``breakeven --from-ledger`` compares a local box with what the workload really pays, not
with one model's list price:

* effective $/Mtok = the ledger's cost / tokens of the filtered workload over the window
  (cache reads and writes at their own prices, the actual model mix);
* list $/Mtok = each (provider, model)'s genai-prices input/output list prices blended at
  that model's own input share, weighted by its tokens (no cache discounts): shown beside;
* the demand projection = the forecast of daily tokens (``forecast_series``: trend, weekday
  effects, level shifts) summed into 730-hour months, their mean, for the box's life.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenomy.economics.breakeven import (
    ApiPrice,
    MonthlyDemand,
    catalog_api_price,
    demand_from_rows,
)
from tokenomy.economics.decimals import HOURS_PER_MONTH, MILLION
from tokenomy.economics.forecast import daily_series, forecast_series

if TYPE_CHECKING:  # the ledger is read through the store handed in (no import cycle)
    from tokenomy.ledger.store import Store

MIN_FORECAST_DAYS = 28
_DAYS_PER_MONTH = HOURS_PER_MONTH / 24


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def ledger_demand(
    store: Store,
    filters: dict[str, str],
    days: int,
    *,
    today: date,
    months: int = 0,
) -> tuple[MonthlyDemand, list[str]]:
    """Demand of the last ``days`` full UTC days before ``today``, projected ``months`` ahead.

    Raises:
        ValueError: no tokens in the window.
    """
    label = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
    since = today - timedelta(days=days)
    rows = store.aggregate(_ms(since), _ms(today), [], filters or None)
    demand = demand_from_rows(
        rows, days, f"ledger: {since} .. {today - timedelta(days=1)} ({label})"
    )
    if demand.mtok_per_month == 0:
        raise ValueError(f"the ledger has no tokens in the last {days} days for {label}")
    notes: list[str] = []
    unpriced = sum(int(r.get("unpriced_requests", 0)) for r in rows)
    if unpriced:
        notes.append(f"{unpriced} requests in the window have no known price (counted at $0)")
    if months <= 0:
        return demand, notes
    history = max(days, MIN_FORECAST_DAYS)
    start = today - timedelta(days=history)
    daily = store.aggregate(_ms(start), _ms(today), ["day"], filters or None)
    series = daily_series(daily, [], start, today - timedelta(days=1))
    try:
        fc = forecast_series(series[0], "tokens", 0)
    except (ValueError, IndexError) as exc:
        notes.append(f"demand kept flat: no forecast ({exc})")
        return demand, notes
    total_days = int((_DAYS_PER_MONTH * months).to_integral_value(rounding="ROUND_CEILING"))
    buckets = [Decimal(0)] * months
    for k in range(total_days):
        month = min(int(Decimal(k) / _DAYS_PER_MONTH), months - 1)
        buckets[month] += fc.predict_mean(today + timedelta(days=k))
    projection = tuple(b / MILLION for b in buckets)
    source = (
        f"forecast of daily tokens ({fc.fit.model} fit, {fc.trend}, r2 {fc.fit.r2:.2f}"
        + (f", mape {fc.mape:.0%}" if fc.mape is not None else "")
        + f") over {history} days, mean per 730-hour month"
    )
    if fc.poor_fit:
        notes.append(f"demand forecast is a poor fit ({fc.poor_fit}); payback is uncertain")
    return (
        MonthlyDemand(
            demand.mtok_per_month,
            demand.input_share,
            demand.source,
            demand.days,
            demand.cost_per_month,
            projection,
            source,
        ),
        notes,
    )


def effective_price(demand: MonthlyDemand) -> ApiPrice | None:
    """The ledger's effective $/Mtok of the workload (None when the ledger has no cost)."""
    price = demand.effective_per_mtok
    if price is None or price <= 0:
        return None
    return ApiPrice(
        price,
        None,
        None,
        demand.input_share,
        f"ledger effective price ({demand.source}): cost / tokens, caches and model mix included",
    )


def list_price_of_mix(
    store: Store, filters: dict[str, str], days: int, *, today: date
) -> tuple[ApiPrice | None, list[str]]:
    """The list price the workload's own model mix would cost, without cache discounts."""
    since = today - timedelta(days=days)
    rows = store.aggregate(_ms(since), _ms(today), ["provider", "model"], filters or None)
    notes: list[str] = []
    total_tokens = Decimal(0)
    total_cost = Decimal(0)
    for r in rows:
        inp, outp = int(r["input_tokens"]), int(r["output_tokens"])
        tokens = Decimal(inp + outp)
        if tokens == 0:
            continue
        name = f"{r['provider']}/{r['model']}" if r.get("provider") else str(r["model"])
        try:
            price = catalog_api_price(name, Decimal(inp) / tokens)
        except ValueError:
            notes.append(f"list price: {name} is not in the catalog (left out of the blend)")
            continue
        total_tokens += tokens
        total_cost += tokens * price.blended_per_mtok
    if total_tokens == 0:
        return None, notes
    share = _share(rows)
    return (
        ApiPrice(
            total_cost / total_tokens,
            None,
            None,
            share,
            "genai-prices list prices of the ledger's model mix (no cache discounts)",
        ),
        notes,
    )


def _share(rows: list[dict[str, Any]]) -> Decimal:
    inp = sum(int(r["input_tokens"]) for r in rows)
    total = inp + sum(int(r["output_tokens"]) for r in rows)
    return Decimal(inp) / total if total else Decimal("0.5")
