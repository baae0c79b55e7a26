"""Trend models of daily demand: growth, weekday seasonality, level shifts, fit quality.

A fit is ordinary least squares of ``y`` (``linear``) or ``ln y`` (``exp``) on

    1, x                     level and trend (x = day number, 0 = first day of history)
    [x >= k]                 a level shift from day k on (a step: a new team, a new product)
    [weekday = d], d = 1..6  weekday effects (Monday is the base)

``fit_auto`` chooses the terms by the Bayesian information criterion
``n ln(SSE/n) + p ln n``; a level shift also pays for the search over its day
(``+ 3 ln n``), so noise alone does not pass for a shift. Prediction intervals are
Student-t intervals for one future day: ``yhat +- t(level, n-p) s sqrt(1 + f' (X'X)^-1 f)``;
on the log scale they are exponentiated (asymmetric, never negative), and the point is
then the median of the day; the mean is ``exp(yhat + se^2 / 2)``.

Quality: ``r2`` on the fitted scale and ``mape``, the mean absolute percentage error of
the same procedure refitted without the last 14 days and asked to predict them.
Fits use floats (they are statistics, not money); reports round them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FitModel = Literal["exp", "linear"]
MAX_LOG = 230.0  # e^230 ~ 1e100: far beyond any real demand, well inside a float
BACKTEST_DAYS = 14
MIN_STEP_SEGMENT = 7  # days on each side of a level shift
MIN_WEEKDAY_DAYS = 21  # three weeks before weekday effects are estimated
POOR_R2 = 0.5
POOR_MAPE = 0.2


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


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, dof: float) -> float:
    """Inverse of ``t_cdf`` by bisection (p in (0, 1)); cached (a forecast asks often)."""
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


# -- least squares -------------------------------------------------------------------------
def _invert(matrix: list[list[float]]) -> list[list[float]] | None:
    """Gauss-Jordan inverse with partial pivoting; None when singular."""
    n = len(matrix)
    a = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12 * max(1.0, max(abs(v) for v in a[pivot][:n])):
            return None
        a[col], a[pivot] = a[pivot], a[col]
        div = a[col][col]
        a[col] = [v / div for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0.0:
                factor = a[r][col]
                a[r] = [v - factor * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


@dataclass(frozen=True, slots=True)
class Fit:
    """An OLS trend fit, with what prediction intervals and reports need."""

    model: FitModel
    coef: tuple[float, ...]  # intercept, slope, [step], [weekday 1..6]
    xtx_inv: tuple[tuple[float, ...], ...]
    sigma: float  # residual standard error (fitted scale)
    n: int
    r2: float  # on the fitted scale (ln y for exp)
    step_at: int | None = None  # day number where a level shift starts
    start_weekday: int | None = None  # weekday (Mon = 0) of x = 0 when weekdays are fitted

    @property
    def intercept(self) -> float:
        return self.coef[0]

    @property
    def slope(self) -> float:
        return self.coef[1]

    @property
    def dof(self) -> int:
        return self.n - len(self.coef)

    @property
    def slope_t(self) -> float:
        """t statistic of the slope (how sure the trend is not flat)."""
        se = self.sigma * math.sqrt(max(self.xtx_inv[1][1], 0.0))
        if se == 0.0:
            return math.inf if self.slope else 0.0
        return self.slope / se

    @property
    def significant_trend(self) -> bool:
        """The slope differs from 0 at about the 95% level (|t| >= 2)."""
        return abs(self.slope_t) >= 2.0

    @property
    def daily_growth(self) -> float:
        """Exp: fractional growth per day. Linear: absolute growth per day."""
        return math.expm1(self.slope) if self.model == "exp" else self.slope

    @property
    def step_factor(self) -> float | None:
        """Exp: the level shift as a factor (2.5 = x2.5). Linear: its size in units."""
        if self.step_at is None:
            return None
        value = self.coef[2]
        return math.exp(value) if self.model == "exp" else value

    @property
    def weekday_factors(self) -> list[float] | None:
        """Mon..Sun relative to their mean (exp: factors; linear: offsets)."""
        if self.start_weekday is None:
            return None
        first = 3 if self.step_at is not None else 2
        raw = [0.0, *self.coef[first : first + 6]]
        mean = sum(raw) / 7
        if self.model == "exp":
            return [math.exp(v - mean) for v in raw]
        return [v - mean for v in raw]

    def features(self, x: float) -> list[float]:
        row = [1.0, x]
        if self.step_at is not None:
            row.append(1.0 if x >= self.step_at else 0.0)
        if self.start_weekday is not None:
            weekday = (self.start_weekday + round(x)) % 7
            row += [1.0 if weekday == d else 0.0 for d in range(1, 7)]
        return row

    def _linear(self, x: float) -> tuple[float, float]:
        f = self.features(x)
        yhat = sum(c * v for c, v in zip(self.coef, f, strict=True))
        quad = sum(f[i] * self.xtx_inv[i][j] * f[j] for i in range(len(f)) for j in range(len(f)))
        return yhat, self.sigma * math.sqrt(1.0 + max(quad, 0.0))

    def predict(self, x: float, level: float) -> tuple[float, float, float]:
        """Point forecast (exp: the median) and prediction interval at day ``x``."""
        yhat, se = self._linear(x)
        half = t_quantile(0.5 + level / 2.0, self.dof) * se
        if self.model == "exp":
            return _exp(yhat), _exp(yhat - half), _exp(yhat + half)
        return max(yhat, 0.0), max(yhat - half, 0.0), max(yhat + half, 0.0)

    def predict_mean(self, x: float) -> float:
        """Expected value at day ``x`` (exp: log-normal mean, above the median)."""
        yhat, se = self._linear(x)
        if self.model == "exp":
            return _exp(yhat + se * se / 2.0)
        return max(yhat, 0.0)

    def fitted(self, x: float) -> float:
        """The fitted value on the original scale (median for exp)."""
        return self.predict(x, 0.5)[0]


def _exp(v: float) -> float:
    # Clamp the exponent: a steep trend projected far must not overflow a float.
    return math.exp(min(v, MAX_LOG))


def _prepare(
    xs: Sequence[float], ys: Sequence[float], model: FitModel
) -> tuple[list[float], list[float]]:
    if model not in ("exp", "linear"):
        raise ValueError(f"model: 'exp' or 'linear', got {model!r}")
    px: list[float] = []
    py: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        if model == "linear":
            px.append(x)
            py.append(y)
        elif y > 0:
            px.append(x)
            py.append(math.log(y))
    return px, py


@dataclass(frozen=True, slots=True)
class _Sums:
    """Cross products of one design without its step column, and their suffix sums."""

    xs: list[float]
    ys: list[float]
    rows: list[list[float]]
    xtx: list[list[float]]
    xty: list[float]
    yy: float
    sst: float


def _sums(xs: list[float], ys: list[float], model: FitModel, weekday: int | None) -> _Sums:
    probe = Fit(model, (), (), 0.0, 0, 0.0, None, weekday)
    rows = [probe.features(x) for x in xs]
    p = len(rows[0])
    xtx = [[sum(r[i] * r[j] for r in rows) for j in range(p)] for i in range(p)]
    xty = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(p)]
    mean = sum(ys) / len(ys)
    return _Sums(xs, ys, rows, xtx, xty, sum(y * y for y in ys), sum((y - mean) ** 2 for y in ys))


def _solve(
    sums: _Sums, model: FitModel, step_at: int | None, weekday: int | None
) -> tuple[Fit, float] | None:
    """OLS from cross products; the step column (if any) is added from suffix sums."""
    xtx = [row[:] for row in sums.xtx]
    xty = sums.xty[:]
    if step_at is not None:
        after = [
            (r, y) for x, r, y in zip(sums.xs, sums.rows, sums.ys, strict=True) if x >= step_at
        ]
        col = [sum(r[i] for r, _ in after) for i in range(len(xty))]
        count = float(len(after))
        # The step column goes third: 1, x, step, weekdays.
        xtx = [[*row[:2], c, *row[2:]] for row, c in zip(xtx, col, strict=True)]
        xtx.insert(2, [*col[:2], count, *col[2:]])
        xty.insert(2, sum(y for _, y in after))
    n, p = len(sums.xs), len(xty)
    if n <= p:
        return None
    inv = _invert(xtx)
    if inv is None:
        return None
    coef = tuple(sum(inv[i][j] * xty[j] for j in range(p)) for i in range(p))
    sse = max(sums.yy - sum(c * v for c, v in zip(coef, xty, strict=True)), 0.0)
    sst = sums.sst
    r2 = 1.0 - sse / sst if sst > 1e-18 else (1.0 if sse <= 1e-18 else 0.0)
    sigma = math.sqrt(sse / (n - p))
    fit = Fit(model, coef, tuple(tuple(r) for r in inv), sigma, n, r2, step_at, weekday)
    return fit, sse


def _ols(
    xs: list[float],
    ys: list[float],
    model: FitModel,
    step_at: int | None,
    start_weekday: int | None,
) -> tuple[Fit, float] | None:
    """The fit and its SSE; None when the design is singular or leaves no dof."""
    return _solve(_sums(xs, ys, model, start_weekday), model, step_at, start_weekday)


def fit_growth(xs: Sequence[float], ys: Sequence[float], model: FitModel = "exp") -> Fit:
    """Level and trend only; ``exp`` ignores non-positive ``ys``. Needs 3+ points."""
    px, py = _prepare(xs, ys, model)
    if len(px) < 3:
        raise ValueError(f"history: need at least 3 days with usage to fit a trend (got {len(px)})")
    result = _ols(px, py, model, None, None)
    if result is None:
        raise ValueError("history: all points fall on the same day")
    return result[0]


def _bic(sse: float, n: int, p: int) -> float:
    return n * math.log(max(sse, 1e-300) / n) + p * math.log(n)


def fit_auto(
    xs: Sequence[float],
    ys: Sequence[float],
    model: FitModel = "exp",
    start_weekday: int | None = None,
    *,
    level_shifts: bool = True,
) -> Fit:
    """Trend plus, where the data support them, weekday effects and one level shift.

    ``start_weekday`` is the weekday of ``x = 0`` (None: no weekday effects).
    """
    px, py = _prepare(xs, ys, model)
    base = fit_growth(xs, ys, model)
    n = len(px)
    best = base
    best_score = _bic(base.sigma**2 * base.dof, n, len(base.coef))
    weekdays: list[int | None] = [None]
    span = (max(px) - min(px) + 1) if px else 0
    if start_weekday is not None and n >= MIN_WEEKDAY_DAYS and span >= MIN_WEEKDAY_DAYS:
        weekdays.append(start_weekday)
    steps: list[int | None] = [None]
    if level_shifts and n >= 2 * MIN_STEP_SEGMENT + 2:
        lo, hi = int(min(px)), int(max(px))
        steps += [
            k
            for k in range(lo + MIN_STEP_SEGMENT, hi - MIN_STEP_SEGMENT + 2)
            if sum(1 for x in px if x < k) >= MIN_STEP_SEGMENT
            and sum(1 for x in px if x >= k) >= MIN_STEP_SEGMENT
        ]
    search_penalty = 3 * math.log(n)
    for weekday in weekdays:
        sums = _sums(px, py, model, weekday)
        for step in steps:
            if weekday is None and step is None:
                continue
            result = _solve(sums, model, step, weekday)
            if result is None:
                continue
            fit, sse = result
            score = _bic(sse, n, len(fit.coef)) + (search_penalty if step is not None else 0.0)
            if score < best_score:
                best, best_score = fit, score
    return best


def backtest_mape(
    xs: Sequence[float],
    ys: Sequence[float],
    model: FitModel,
    start_weekday: int | None,
    days: int = BACKTEST_DAYS,
) -> float | None:
    """Refit without the last ``days`` days, predict them: mean |error| / actual.

    None when too little history remains to fit (fewer than 14 days before the holdout).
    """
    if len(xs) < days + 14:
        return None
    train_x, train_y = list(xs[:-days]), list(ys[:-days])
    try:
        fit = fit_auto(train_x, train_y, model, start_weekday)
    except ValueError:
        return None
    errors = [
        abs(y - fit.fitted(x)) / y for x, y in zip(xs[-days:], ys[-days:], strict=True) if y > 0
    ]
    return sum(errors) / len(errors) if errors else None
