"""Demand forecast: fit daily tokens and cost, project them, flag budgets.

The fit is ``tokenomy.economics.trend.fit_auto``: ordinary least squares of ``ln y``
(``exp``, default: daily growth ``e^b - 1``, doubling time ``ln 2 / b``) or ``y``
(``linear``) on day number, plus weekday effects and one level shift where the data
support them (BIC). Days with zero usage cannot be logged in ``exp`` and are left out
(their number is reported). Each series reports its fit quality: ``r2`` and ``mape`` (a
backtest on its last 14 days), and says when the fit is poor.

Intervals are Student-t prediction intervals for a single future day; on the log scale the
point is the median day and ``mean`` its expected value. Totals: the horizon, and the
calendar month of the day after history (actual month to date + forecast of the rest).
Fits use floats (they are statistics, not money); every reported dollar amount is a
Decimal rounded to 1e-6.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from tokenomy.economics.decimals import to_decimal
from tokenomy.economics.trend import (
    BACKTEST_DAYS,
    POOR_MAPE,
    POOR_R2,
    Fit,
    FitModel,
    backtest_mape,
    fit_auto,
    fit_growth,
)
from tokenomy.money import NANOS_PER_USD

Metric = Literal["tokens", "cost"]
_MICRO = Decimal("0.000001")
_NEGLIGIBLE_GROWTH = 1e-6  # per day, relative to the level
_QUANTIZABLE = Decimal(10) ** 15


# -- series from the ledger ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DailySeries:
    """One group's daily tokens and cost from ``start`` to ``end`` (inclusive, UTC days)."""

    group: dict[str, str]
    start: date
    end: date
    tokens: list[int]
    cost_nanos: list[int]


def daily_series(
    rows: Iterable[Mapping[str, Any]], by: Sequence[str], start: date, end: date
) -> list[DailySeries]:
    """Group ``store.aggregate(..., by=[*by, "day"])`` rows into gap-filled daily series.

    A day without a row is a day without usage (0), not a missing value.
    """
    if end < start:
        raise ValueError(f"history: end {end} is before start {start}")
    ndays = (end - start).days + 1
    groups: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}
    for row in rows:
        day = date.fromisoformat(str(row["day"]))
        if not start <= day <= end:
            continue
        key = tuple(str(row.get(name, "")) for name in by)
        tokens, cost = groups.setdefault(key, ([0] * ndays, [0] * ndays))
        i = (day - start).days
        tokens[i] += int(row.get("input_tokens", 0)) + int(row.get("output_tokens", 0))
        cost[i] += int(row.get("cost_nanos", 0) or 0)
    return [
        DailySeries(dict(zip(by, key, strict=True)), start, end, t, c)
        for key, (t, c) in sorted(groups.items())
    ]


@dataclass(frozen=True, slots=True)
class ProjectedDay:
    """One projected day: point forecast (exp: the median), interval and mean."""

    day: date
    point: Decimal
    low: Decimal
    high: Decimal
    mean: Decimal | None = None


def _ratio(value: float | None, places: str = "0.0001") -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return Decimal(repr(value)).quantize(Decimal(places))


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """The fitted trend and projection of one metric of one group."""

    group: dict[str, str]
    metric: Metric
    fit: Fit
    level: float
    start: date
    end: date  # last day of history
    history: list[Decimal]
    zero_days_excluded: int
    projection: list[ProjectedDay] = field(default_factory=list)
    mape: float | None = None  # backtest error on the last 14 days

    @property
    def unit(self) -> str:
        """``tokens`` or ``usd``."""
        return "tokens" if self.metric == "tokens" else "usd"

    @property
    def label(self) -> str:
        """``team=research, model=gpt-4o`` (``all`` without groups)."""
        return ", ".join(f"{k}={v}" for k, v in self.group.items()) or "all"

    def x_of(self, day: date) -> float:
        """Day number used by the fit (0 = first day of history)."""
        return float((day - self.start).days)

    def predict(self, day: date) -> tuple[Decimal, Decimal, Decimal]:
        """Point and interval for any day, as reported numbers (tokens int, USD 1e-6)."""
        point, low, high = self.fit.predict(self.x_of(day), self.level)
        return self._num(point), self._num(low), self._num(high)

    def predict_mean(self, day: date) -> Decimal:
        """The expected value of a day (exp: above the median point)."""
        return self._num(self.fit.predict_mean(self.x_of(day)))

    def _num(self, value: float) -> Decimal:
        if self.metric == "tokens":
            return Decimal(round(value))
        usd = Decimal(repr(value))
        return usd.quantize(_MICRO) if usd < _QUANTIZABLE else usd.to_integral_value()

    @property
    def trend(self) -> str:
        """``growing``, ``shrinking`` or ``flat`` (slope not significant at ~95%)."""
        if not self.fit.significant_trend or self._negligible_slope:
            return "flat"
        return "growing" if self.fit.slope > 0 else "shrinking"

    @property
    def _negligible_slope(self) -> bool:
        # A noise-free series has a standard error of ~0, so any rounding-level slope looks
        # "significant": under a millionth of the level per day is flat, not a doubling in
        # millions of years.
        if self.fit.model == "exp":
            return abs(self.fit.slope) < _NEGLIGIBLE_GROWTH
        level = max((abs(float(v)) for v in self.history), default=0.0)
        return abs(self.fit.slope) < _NEGLIGIBLE_GROWTH * max(level, 1.0)

    @property
    def doubling_days(self) -> Decimal | None:
        """Days to double at the fitted exponential rate (None if flat/shrinking or linear)."""
        if self.fit.model != "exp" or self.trend != "growing":
            return None
        return Decimal(repr(round(math.log(2) / self.fit.slope, 2)))

    @property
    def daily_growth(self) -> Decimal:
        """Exp: fraction per day (0.02 = +2%/day). Linear: units per day."""
        g = self.fit.daily_growth
        return Decimal(repr(round(g, 6))) if self.fit.model == "exp" else self._num(g)

    @property
    def level_shift_day(self) -> date | None:
        """First day of a detected level shift."""
        if self.fit.step_at is None:
            return None
        return self.start + timedelta(days=self.fit.step_at)

    @property
    def poor_fit(self) -> str | None:
        """Why the fit should not be trusted, or None."""
        reasons = []
        if self.mape is not None and self.mape > POOR_MAPE:
            shift = self.level_shift_day
            if shift is not None and shift > self.end - timedelta(days=BACKTEST_DAYS):
                # The backtest refits without the last 14 days, so it cannot see a shift in
                # them: its error says the shift was unforeseeable, not that this fit is bad.
                reasons.append(
                    f"backtest error {self.mape:.0%} on the last 14 days: the level shift of "
                    f"{shift.isoformat()} falls inside them (the fit with it has r2 "
                    f"{self.fit.r2:.2f}); recheck once more days follow the shift"
                )
            else:
                reasons.append(f"backtest error {self.mape:.0%} on the last 14 days")
        if self.fit.r2 < POOR_R2 and self.trend != "flat":
            reasons.append(f"r2 {self.fit.r2:.2f}: the trend explains little of the history")
        return "; ".join(reasons) or None

    def totals(self) -> tuple[Decimal, Decimal, Decimal]:
        """Sum of the projection's points, lows and highs (a conservative band for the sum)."""
        zero = Decimal(0)
        return (
            sum((p.point for p in self.projection), zero),
            sum((p.low for p in self.projection), zero),
            sum((p.high for p in self.projection), zero),
        )

    def month(self) -> dict[str, Any]:
        """The calendar month of the day after history: actual to date + forecast of the rest."""
        today = self.end + timedelta(days=1)
        last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        first = today.replace(day=1)
        to_date = sum(
            (
                v
                for i, v in enumerate(self.history)
                if first <= self.start + timedelta(days=i) <= self.end
            ),
            Decimal(0),
        )
        rest = rest_low = rest_high = rest_mean = Decimal(0)
        day = today
        while day <= last:
            point, low, high = self.predict(day)
            rest, rest_low, rest_high = rest + point, rest_low + low, rest_high + high
            rest_mean += self.predict_mean(day)
            day += timedelta(days=1)
        return {
            "month": f"{today.year:04d}-{today.month:02d}",
            "month_to_date": to_date,
            "month_rest": rest,
            "month_rest_mean": rest_mean,
            "month_total": to_date + rest,
            "month_total_mean": to_date + rest_mean,
            "month_total_low": to_date + rest_low,
            "month_total_high": to_date + rest_high,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary plus the day-by-day projection.

        The group's fields come first and are never overwritten: the fit type is ``fit``.
        """
        total, total_low, total_high = self.totals()
        last = self.projection[-1] if self.projection else None
        factor = self.fit.step_factor
        weekdays = self.fit.weekday_factors
        summary: dict[str, Any] = {
            "metric": self.metric,
            "unit": self.unit,
            "fit": self.fit.model,
            "trend": self.trend,
            "history_start": self.start.isoformat(),
            "history_end": self.end.isoformat(),
            "history_days_fitted": self.fit.n,
            "zero_days_excluded": self.zero_days_excluded,
            "last_day_actual": self.history[-1] if self.history else None,
            "daily_growth": self.daily_growth,
            "doubling_days": self.doubling_days,
            "level_shift_day": self.level_shift_day.isoformat() if self.level_shift_day else None,
            "level_shift_factor": _ratio(factor),
            "weekday_factors": [_ratio(w) for w in weekdays] if weekdays else None,
            "r2": _ratio(self.fit.r2),
            "mape": _ratio(self.mape),
            "poor_fit": self.poor_fit,
            "level": _ratio(self.level),
            "horizon_end": last.day.isoformat() if last else None,
            "horizon_end_point": last.point if last else None,
            "horizon_end_mean": last.mean if last else None,
            "horizon_end_low": last.low if last else None,
            "horizon_end_high": last.high if last else None,
            "horizon_total": total,
            "horizon_total_mean": sum((p.mean or Decimal(0) for p in self.projection), Decimal(0)),
            "horizon_total_low": total_low,
            "horizon_total_high": total_high,
            **self.month(),
            "projection": [
                {
                    "day": p.day.isoformat(),
                    "point": p.point,
                    "mean": p.mean,
                    "low": p.low,
                    "high": p.high,
                }
                for p in self.projection
            ],
        }
        return {**self.group, **{k: v for k, v in summary.items() if k not in self.group}}


def forecast_series(
    series: DailySeries,
    metric: Metric,
    horizon_days: int,
    level: float = 0.95,
    model: FitModel = "exp",
    *,
    seasonal: bool = True,
) -> SeriesForecast:
    """Fit one metric of one series and project ``horizon_days`` past its last day.

    The fit chooses weekday effects and a level shift where the data support them
    (``trend.fit_auto``); ``seasonal=False`` fits level and trend only.
    """
    if horizon_days < 0:
        raise ValueError(f"horizon: must be >= 0 days (got {horizon_days})")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be between 0 and 1 (got {level})")
    raw = series.tokens if metric == "tokens" else series.cost_nanos
    # History starts at the group's first day of usage: the days before it say nothing
    # about its growth (a team that started last week did not grow from zero).
    first = next((i for i, v in enumerate(raw) if v > 0), None)
    if first is None:
        raise ValueError("history: no usage in the window")
    raw = raw[first:]
    start = series.start + timedelta(days=first)
    ys = [float(v) if metric == "tokens" else v / NANOS_PER_USD for v in raw]
    xs = [float(i) for i in range(len(ys))]
    if seasonal:
        fit = fit_auto(xs, ys, model, start.weekday())
        mape = backtest_mape(xs, ys, model, start.weekday())
    else:
        fit = fit_growth(xs, ys, model)
        mape = None
    zeros = sum(1 for y in ys if y <= 0) if model == "exp" else 0
    history = [
        Decimal(v) if metric == "tokens" else (Decimal(v) / NANOS_PER_USD).quantize(_MICRO)
        for v in raw
    ]
    fc = SeriesForecast(
        series.group, metric, fit, level, start, series.end, history, zeros, mape=mape
    )
    for k in range(1, horizon_days + 1):
        day = series.end + timedelta(days=k)
        point, low, high = fc.predict(day)
        fc.projection.append(ProjectedDay(day, point, low, high, fc.predict_mean(day)))
    return fc


def forecast(
    rows: Iterable[Mapping[str, Any]],
    by: Sequence[str],
    start: date,
    end: date,
    horizon_days: int,
    *,
    level: float = 0.95,
    model: FitModel = "exp",
    metrics: Sequence[Metric] = ("tokens", "cost"),
) -> tuple[list[SeriesForecast], list[str]]:
    """Forecast every group and metric; returns forecasts and notes on what was skipped."""
    results: list[SeriesForecast] = []
    notes: list[str] = []
    for series in daily_series(rows, by, start, end):
        for metric in metrics:
            label = ", ".join(f"{k}={v}" for k, v in series.group.items()) or "all"
            try:
                results.append(forecast_series(series, metric, horizon_days, level, model))
            except ValueError as exc:
                notes.append(f"{label} {metric}: skipped ({exc})")
    return results, notes


# -- budgets -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BudgetToProject:
    """The little the forecast needs to know about a budget (the budgets room owns the rest).

    ``period_end`` is the last day inside the period; ``spent`` is what is booked so far.
    """

    scope: dict[str, str]
    unit: Literal["usd", "tokens"]
    limit: Decimal
    spent: Decimal
    period_start: date | None
    period_end: date
    name: str = ""


@dataclass(frozen=True, slots=True)
class BudgetFlag:
    """A budget's projected spend by the end of its period."""

    budget: BudgetToProject
    projected_total: Decimal  # spent + projected point forecast to period end
    projected_high: Decimal  # spent + upper bounds
    exhausted_on: date | None  # first day the point forecast reaches the limit
    runs_out: bool  # point forecast reaches the limit before the period ends
    may_run_out: bool  # the upper bound does
    # (day, cumulative point, cumulative upper bound) at the end of each projected day
    path: tuple[tuple[date, Decimal, Decimal], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row."""
        b = self.budget
        return {
            "budget": b.name or ", ".join(f"{k}:{v}" for k, v in b.scope.items()) or "all",
            "unit": b.unit,
            "limit": b.limit,
            "spent": b.spent,
            "period_end": b.period_end.isoformat(),
            "projected_total": _rounded(self.projected_total, b.unit),
            "projected_high": _rounded(self.projected_high, b.unit),
            "exhausted_on": self.exhausted_on.isoformat() if self.exhausted_on else None,
            "runs_out": self.runs_out,
            "may_run_out": self.may_run_out,
        }


def project_budget(
    budget: BudgetToProject,
    fc: SeriesForecast,
    today: date,
    *,
    today_left: Decimal = Decimal(1),
) -> BudgetFlag:
    """Spent so far plus the forecast of each day from ``today`` to the period's last day.

    ``today_left`` is the fraction of today still to come (1 at midnight): ``spent``
    already holds the part of today that is over, so only the rest of today's forecast is
    added. ``fc`` must be the forecast of the budget's scope in the budget's unit; the
    point forecast (exp: the median day) decides the run-out date, the upper bound
    "may run out". ``tokenomy budgets list`` and ``tokenomy forecast`` both use this.
    """
    if fc.unit != budget.unit:
        raise ValueError(f"unit: budget is in {budget.unit}, forecast in {fc.unit}")
    if budget.spent >= budget.limit:
        return BudgetFlag(budget, budget.spent, budget.spent, today, True, True)
    total = high = budget.spent
    exhausted: date | None = None
    path: list[tuple[date, Decimal, Decimal]] = []
    day = today
    while day <= budget.period_end:
        point, _low, upper = fc.predict(day)
        share = today_left if day == today else Decimal(1)
        total += point * share
        high += upper * share
        path.append((day, total, high))
        if exhausted is None and total >= budget.limit:
            exhausted = day
        day += timedelta(days=1)
    return BudgetFlag(
        budget, total, high, exhausted, exhausted is not None, high >= budget.limit, tuple(path)
    )


def flag_budgets(
    pairs: Iterable[tuple[BudgetToProject, SeriesForecast]], today: date
) -> list[BudgetFlag]:
    """Project every (budget, forecast of its scope) pair; the ones running out come first."""
    flags = [project_budget(b, fc, today) for b, fc in pairs]
    return sorted(
        flags, key=lambda f: (not f.runs_out, not f.may_run_out, f.exhausted_on or date.max)
    )


def _rounded(value: Decimal, unit: str) -> Decimal:
    return value.quantize(Decimal(1) if unit == "tokens" else _MICRO)


def budget_from_record(record: Any) -> BudgetToProject:
    """Adapt a budget record of the budgets room (object or mapping) to ``BudgetToProject``.

    Accepts ``scope`` as a mapping or ``"team:research"`` / ``"team=research"`` text (or
    ``scope_kind`` + ``scope_value``), ``unit`` usd|tokens, ``limit`` and ``spent`` numbers,
    ``period_start`` / ``period_end`` as dates, datetimes, ISO text or epoch milliseconds.
    A ``period_end`` with a time of day is the exclusive end instant of the period (as
    ``tokenomy.budgets.report`` gives it: ``2026-12-01T00:00:00Z``); a bare date is the
    last day inside the period.

    Raises:
        ValueError: the record cannot be read (the caller skips it with a note).
    """

    def get(name: str, default: Any = None) -> Any:
        if isinstance(record, Mapping):
            return record.get(name, default)
        return getattr(record, name, default)

    raw_scope = get("scope")
    scope: dict[str, str]
    if isinstance(raw_scope, Mapping):
        scope = {str(k): str(v) for k, v in raw_scope.items()}
    elif isinstance(raw_scope, str) and raw_scope not in ("", "global", "all", "*"):
        scope = {}
        for part in raw_scope.split(","):
            key, sep, value = part.replace("=", ":").partition(":")
            if not sep:
                raise ValueError(f"scope: cannot read {raw_scope!r}")
            scope[key.strip()] = value.strip()
    elif get("scope_kind") is not None:
        scope = {str(get("scope_kind")): str(get("scope_value", ""))}
    else:
        scope = {}
    unit = str(get("unit", "usd")).lower()
    if unit not in ("usd", "tokens"):
        raise ValueError(f"unit: only usd and tokens budgets are forecast, not {unit!r}")
    start = get("period_start")
    end = get("period_end")
    if end is None:
        raise ValueError("period_end: none (a budget that never resets)")
    return BudgetToProject(
        scope=scope,
        unit=unit,  # type: ignore[arg-type]
        limit=_dec(get("limit"), "limit"),
        spent=_dec(get("spent", 0), "spent"),
        period_start=None if start is None else _day(start, "period_start"),
        period_end=_day(end, "period_end", exclusive_instant=True),
        name=str(get("name", "") or get("id", "") or ""),
    )


def _dec(value: Any, name: str) -> Decimal:
    if value is None:
        raise ValueError(f"{name}: missing")
    return to_decimal(value, name)


def _day(value: Any, name: str, exclusive_instant: bool = False) -> date:
    # An instant (datetime, ISO time, epoch ms) that ends a period is exclusive: the last
    # day inside is the day of the millisecond before it.
    back = timedelta(milliseconds=1) if exclusive_instant else timedelta(0)
    if isinstance(value, datetime):
        return (value - back).date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return (datetime.fromtimestamp(value / 1000, tz=UTC) - back).date()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            if len(text) <= 10:
                return date.fromisoformat(text)
            return (datetime.fromisoformat(text) - back).date()
        except ValueError:
            raise ValueError(f"{name}: expected an ISO date, got {value!r}") from None
    raise ValueError(f"{name}: expected a date, got {value!r}")
