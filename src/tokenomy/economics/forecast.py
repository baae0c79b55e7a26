"""Demand forecast: fit the growth of daily tokens and cost, project it, flag budgets.

Fitting (ordinary least squares on day number ``x``):

* ``exp`` (default): ``ln(y) = a + b x``, so daily growth is ``e^b - 1``, doubling time
  ``ln 2 / b``; the prediction interval is computed on the log scale and exponentiated, so it
  is asymmetric and never negative. Days with zero usage cannot be logged and are left out
  (their number is reported).
* ``linear``: ``y = a + b x``; growth is ``b`` per day; the lower bound is clipped at 0.

Both intervals are Student-t prediction intervals for a single future day:
``yhat +- t(level, n-2) x s x sqrt(1 + 1/n + (x - mean)^2 / Sxx)``. Fits use floats (they
are statistics, not money); every reported dollar amount is a Decimal rounded to 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from tokenomy.economics.decimals import to_decimal
from tokenomy.money import NANOS_PER_USD

Metric = Literal["tokens", "cost"]
FitModel = Literal["exp", "linear"]
_MICRO = Decimal("0.000001")
_QUANTIZABLE = Decimal(10) ** 15
_MAX_LOG = 230.0  # e^230 ~ 1e100: far beyond any real demand, well inside a float


# -- Student t quantile (no SciPy in the dependency set) -----------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction for the incomplete beta function (modified Lentz's method).
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """Student t cumulative distribution function."""
    tail = 0.5 * _betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, dof: float) -> float:
    """Inverse of ``t_cdf`` by bisection (p in (0, 1))."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"level: probability must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


# -- fitting -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fit:
    """An OLS fit of ``y`` (or ``ln y``) on day number, with what prediction intervals need."""

    model: FitModel
    intercept: float
    slope: float
    sigma: float  # residual standard error
    n: int
    x_mean: float
    sxx: float

    @property
    def daily_growth(self) -> float:
        """Exp: fractional growth per day. Linear: absolute growth per day."""
        return math.expm1(self.slope) if self.model == "exp" else self.slope

    def predict(self, x: float, level: float) -> tuple[float, float, float]:
        """Point forecast and prediction interval ``(point, low, high)`` at day ``x``."""
        yhat = self.intercept + self.slope * x
        se = self.sigma * math.sqrt(1.0 + 1.0 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        half = t_quantile(0.5 + level / 2.0, self.n - 2) * se
        if self.model == "exp":
            # Clamp the exponent: a steep trend projected far must not overflow a float.
            def grow(v: float) -> float:
                return math.exp(min(v, _MAX_LOG))

            return grow(yhat), grow(yhat - half), grow(yhat + half)
        return max(yhat, 0.0), max(yhat - half, 0.0), max(yhat + half, 0.0)


def fit_growth(xs: Sequence[float], ys: Sequence[float], model: FitModel = "exp") -> Fit:
    """Least-squares growth fit; ``exp`` ignores non-positive ``ys``. Needs 3+ points."""
    if model not in ("exp", "linear"):
        raise ValueError(f"model: 'exp' or 'linear', got {model!r}")
    pairs = [
        (x, math.log(y) if model == "exp" else y)
        for x, y in zip(xs, ys, strict=True)
        if model == "linear" or y > 0
    ]
    n = len(pairs)
    if n < 3:
        raise ValueError(f"history: need at least 3 days with usage to fit a trend (got {n})")
    x_mean = sum(p[0] for p in pairs) / n
    y_mean = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - x_mean) ** 2 for p in pairs)
    if sxx == 0:
        raise ValueError("history: all points fall on the same day")
    slope = sum((p[0] - x_mean) * (p[1] - y_mean) for p in pairs) / sxx
    intercept = y_mean - slope * x_mean
    sse = sum((p[1] - intercept - slope * p[0]) ** 2 for p in pairs)
    sigma = math.sqrt(sse / (n - 2))
    return Fit(model, intercept, slope, sigma, n, x_mean, sxx)


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
    """One projected day: point forecast and prediction interval."""

    day: date
    point: Decimal
    low: Decimal
    high: Decimal


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

    @property
    def unit(self) -> str:
        """``tokens`` or ``usd``."""
        return "tokens" if self.metric == "tokens" else "usd"

    def x_of(self, day: date) -> float:
        """Day number used by the fit (0 = first day of history)."""
        return float((day - self.start).days)

    def predict(self, day: date) -> tuple[Decimal, Decimal, Decimal]:
        """Point and interval for any day, as reported numbers (tokens int, USD 1e-6)."""
        point, low, high = self.fit.predict(self.x_of(day), self.level)
        return self._num(point), self._num(low), self._num(high)

    def _num(self, value: float) -> Decimal:
        if self.metric == "tokens":
            return Decimal(round(value))
        usd = Decimal(repr(value))
        return usd.quantize(_MICRO) if usd < _QUANTIZABLE else usd.to_integral_value()

    @property
    def doubling_days(self) -> Decimal | None:
        """Days to double at the fitted exponential rate (None if flat/shrinking or linear)."""
        if self.fit.model != "exp" or self.fit.slope <= 0:
            return None
        return Decimal(repr(round(math.log(2) / self.fit.slope, 2)))

    @property
    def daily_growth(self) -> Decimal:
        """Exp: fraction per day (0.02 = +2%/day). Linear: units per day."""
        g = self.fit.daily_growth
        return Decimal(repr(round(g, 6))) if self.fit.model == "exp" else self._num(g)

    def totals(self) -> tuple[Decimal, Decimal, Decimal]:
        """Sum of the projection's points, lows and highs (a conservative band for the sum)."""
        zero = Decimal(0)
        return (
            sum((p.point for p in self.projection), zero),
            sum((p.low for p in self.projection), zero),
            sum((p.high for p in self.projection), zero),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary plus the day-by-day projection."""
        total, total_low, total_high = self.totals()
        last = self.projection[-1] if self.projection else None
        return {
            **self.group,
            "metric": self.metric,
            "unit": self.unit,
            "model": self.fit.model,
            "history_start": self.start.isoformat(),
            "history_end": self.end.isoformat(),
            "history_days_fitted": self.fit.n,
            "zero_days_excluded": self.zero_days_excluded,
            "last_day_actual": self.history[-1] if self.history else None,
            "daily_growth": self.daily_growth,
            "doubling_days": self.doubling_days,
            "level": self.level,
            "horizon_end": last.day.isoformat() if last else None,
            "horizon_end_point": last.point if last else None,
            "horizon_end_low": last.low if last else None,
            "horizon_end_high": last.high if last else None,
            "horizon_total": total,
            "horizon_total_low": total_low,
            "horizon_total_high": total_high,
            "projection": [
                {"day": p.day.isoformat(), "point": p.point, "low": p.low, "high": p.high}
                for p in self.projection
            ],
        }


def forecast_series(
    series: DailySeries,
    metric: Metric,
    horizon_days: int,
    level: float = 0.95,
    model: FitModel = "exp",
) -> SeriesForecast:
    """Fit one metric of one series and project ``horizon_days`` past its last day."""
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
    fit = fit_growth(xs, ys, model)
    zeros = sum(1 for y in ys if y <= 0) if model == "exp" else 0
    history = [
        Decimal(v) if metric == "tokens" else (Decimal(v) / NANOS_PER_USD).quantize(_MICRO)
        for v in raw
    ]
    fc = SeriesForecast(series.group, metric, fit, level, start, series.end, history, zeros)
    for k in range(1, horizon_days + 1):
        day = series.end + timedelta(days=k)
        point, low, high = fc.predict(day)
        fc.projection.append(ProjectedDay(day, point, low, high))
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row."""
        b = self.budget
        return {
            "budget": b.name or ", ".join(f"{k}:{v}" for k, v in b.scope.items()) or "all",
            "unit": b.unit,
            "limit": b.limit,
            "spent": b.spent,
            "period_end": b.period_end.isoformat(),
            "projected_total": self.projected_total,
            "projected_high": self.projected_high,
            "exhausted_on": self.exhausted_on.isoformat() if self.exhausted_on else None,
            "runs_out": self.runs_out,
            "may_run_out": self.may_run_out,
        }


def project_budget(budget: BudgetToProject, fc: SeriesForecast, today: date) -> BudgetFlag:
    """Spent so far plus the forecast of each day from ``today`` to the period's last day.

    ``today`` is counted whole: the history behind ``fc`` ends the day before, and what
    was spent of today already is small next to a day's forecast (the flag errs early).
    ``fc`` must be the forecast of the budget's scope in the budget's unit.
    """
    if fc.unit != budget.unit:
        raise ValueError(f"unit: budget is in {budget.unit}, forecast in {fc.unit}")
    if budget.spent >= budget.limit:
        return BudgetFlag(budget, budget.spent, budget.spent, today, True, True)
    total = high = budget.spent
    exhausted: date | None = None
    day = today
    while day <= budget.period_end:
        point, _low, upper = fc.predict(day)
        total += point
        high += upper
        if exhausted is None and total >= budget.limit:
            exhausted = day
        day += timedelta(days=1)
    return BudgetFlag(budget, total, high, exhausted, exhausted is not None, high >= budget.limit)


def flag_budgets(
    pairs: Iterable[tuple[BudgetToProject, SeriesForecast]], today: date
) -> list[BudgetFlag]:
    """Project every (budget, forecast of its scope) pair; the ones running out come first."""
    flags = [project_budget(b, fc, today) for b, fc in pairs]
    return sorted(
        flags, key=lambda f: (not f.runs_out, not f.may_run_out, f.exhausted_on or date.max)
    )


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
