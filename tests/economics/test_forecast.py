"""Forecast: growth recovered from synthetic ledgers, intervals, budgets, charts."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.economics.conftest import TODAY, day_ms, growth_events
from tokenomy.economics import (
    BudgetToProject,
    budget_from_record,
    daily_series,
    fit_growth,
    flag_budgets,
    forecast,
    forecast_series,
    project_budget,
)
from tokenomy.economics.forecast import DailySeries
from tokenomy.economics.plot import plot_forecasts
from tokenomy.economics.trend import t_quantile
from tokenomy.ledger import open_store

START = TODAY - timedelta(days=60)
END = TODAY - timedelta(days=1)


def ledger_rows(url: str, by: list[str]) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        return store.aggregate(day_ms(START, 0), day_ms(TODAY, 0), [*by, "day"])
    finally:
        store.close()


@pytest.mark.parametrize(
    ("p", "dof", "expected"),
    [
        (0.975, 10, 2.228139),
        (0.975, 1, 12.706205),
        (0.95, 5, 2.015048),
        (0.975, 58, 2.001717),
        (0.975, 10_000_000, 1.959964),
        (0.025, 10, -2.228139),
    ],
)
def test_student_t_quantiles(p: float, dof: int, expected: float) -> None:
    assert t_quantile(p, dof) == pytest.approx(expected, abs=2e-6)


def test_recovers_known_growth_per_team_from_a_real_ledger(
    ledger: Callable[[list[Any]], str],
) -> None:
    events = growth_events(
        60, start_tokens=1e6, daily_growth=0.03, noise=0.05, team="research"
    ) + growth_events(60, start_tokens=5e6, daily_growth=0.01, noise=0.05, team="ops", seed=7)
    url = ledger(events)
    forecasts, notes = forecast(ledger_rows(url, ["team"]), ["team"], START, END, 30)
    assert notes == []
    by_key = {(f.group["team"], f.metric): f for f in forecasts}
    assert set(by_key) == {(t, m) for t in ("ops", "research") for m in ("tokens", "cost")}
    research, ops = by_key["research", "tokens"], by_key["ops", "tokens"]
    # slope standard error here is ~0.0004/day: recover the rate within 0.003
    assert research.fit.daily_growth == pytest.approx(0.03, abs=0.003)
    assert ops.fit.daily_growth == pytest.approx(0.01, abs=0.003)
    assert by_key["research", "cost"].fit.daily_growth == pytest.approx(0.03, abs=0.003)
    assert research.doubling_days == pytest.approx(D(math.log(2) / math.log(1.03)), abs=D(1))
    # the projection: 30 days, intervals around the point, widening with distance
    assert len(research.projection) == 30
    assert research.projection[0].day == TODAY
    for p in research.projection:
        assert p.low < p.point < p.high
    first, last = research.projection[0], research.projection[-1]
    assert (last.high - last.low) / last.point > (first.high - first.low) / first.point
    # the true noiseless value 30 days out lies inside the 95% interval
    truth = 1e6 * 1.03 ** (60 + 29)
    assert float(last.low) < truth < float(last.high)
    # costs are Decimal USD at $2/Mtok
    cost = by_key["research", "cost"].projection[-1]
    assert isinstance(cost.point, D) and cost.point == cost.point.quantize(D("0.000001"))
    assert float(cost.point) == pytest.approx(float(last.point) / 1e6 * 2, rel=0.01)


def test_linear_fit_recovers_slope() -> None:
    xs = [float(i) for i in range(40)]
    ys = [1e6 + 2e4 * x + (5e3 if i % 2 else -5e3) for i, x in enumerate(xs)]
    fit = fit_growth(xs, ys, "linear")
    assert fit.daily_growth == pytest.approx(2e4, rel=0.01)
    point, low, high = fit.predict(50.0, 0.95)
    assert point == pytest.approx(1e6 + 2e4 * 50, rel=0.01)
    assert low < point < high


def test_zero_days_are_excluded_from_the_exp_fit_and_gaps_filled() -> None:
    rows = [
        {
            "day": (START + timedelta(days=i)).isoformat(),
            "input_tokens": 1000 * (i + 1),
            "output_tokens": 0,
            "cost_nanos": 0,
        }
        for i in range(0, 60, 2)
    ]
    [series] = daily_series(rows, [], START, END)
    assert len(series.tokens) == 60 and series.tokens[1] == 0  # gap = a day without usage
    fc = forecast_series(series, "tokens", 7)
    assert fc.zero_days_excluded == 30 and fc.fit.n == 30
    with pytest.raises(ValueError, match="at least 3 days"):
        fit_growth([0.0, 1.0], [1.0, 2.0])


def flat_forecast(usd_per_day: int, days: int = 10) -> Any:
    start = TODAY - timedelta(days=days)
    series = DailySeries(
        {}, start, TODAY - timedelta(days=1), [1] * days, [usd_per_day * 10**9] * days
    )
    return forecast_series(series, "cost", 0)


def test_budget_exhaustion_by_hand() -> None:
    fc = flat_forecast(100)  # exactly $100/day, no noise: a zero-width interval
    budget = BudgetToProject(
        {"team": "research"},
        "usd",
        D(1000),
        D(500),
        None,
        TODAY + timedelta(days=9),
        "research-monthly",
    )
    flag = project_budget(budget, fc, TODAY)
    # $500 spent + 10 days x $100 = $1,500 > $1,000: the 5th day (today + 4) reaches it
    assert flag.projected_total == D(1500)
    assert flag.exhausted_on == TODAY + timedelta(days=4)
    assert flag.runs_out and flag.may_run_out
    roomy = BudgetToProject({"team": "ops"}, "usd", D(5000), D(0), None, TODAY + timedelta(days=9))
    safe = project_budget(roomy, fc, TODAY)
    assert not safe.runs_out and safe.exhausted_on is None and safe.projected_total == 1000
    spent = BudgetToProject({}, "usd", D(10), D(10), None, TODAY)
    assert project_budget(spent, fc, TODAY).exhausted_on == TODAY
    flags = flag_budgets([(roomy, fc), (budget, fc)], TODAY)
    assert [f.budget.name for f in flags] == ["research-monthly", ""]
    with pytest.raises(ValueError, match="unit"):
        project_budget(BudgetToProject({}, "tokens", D(1), D(0), None, TODAY), fc, TODAY)


def test_budget_records_from_the_budgets_room() -> None:
    b = budget_from_record(
        {
            "scope": "team:research",
            "unit": "usd",
            "limit": D("250.5"),
            "spent": D("10"),
            "period_end": "2026-12-01T00:00:00Z",
        }
    )
    assert b.scope == {"team": "research"} and b.limit == D("250.5")
    assert b.period_end == date(2026, 11, 30)  # exclusive end instant -> last day inside
    assert budget_from_record(
        {"scope": "org:acme", "unit": "tokens", "limit": 5, "period_end": "2026-11-30"}
    ).period_end == date(2026, 11, 30)
    with pytest.raises(ValueError, match="only usd and tokens"):
        budget_from_record(
            {"scope": "team:x", "unit": "requests", "limit": 5, "period_end": "2026-11-30"}
        )
    with pytest.raises(ValueError, match="period_end"):
        budget_from_record({"scope": "team:x", "unit": "usd", "limit": 5, "period_end": None})


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_png_and_svg(tmp_path: Path, suffix: str) -> None:
    rows = [
        {
            "day": (START + timedelta(days=i)).isoformat(),
            "team": "r",
            "input_tokens": int(1e6 * 1.02**i),
            "output_tokens": 0,
            "cost_nanos": int(2e6 * 1.02**i),
        }
        for i in range(60)
    ]
    forecasts, _ = forecast(rows, ["team"], START, END, 14)
    path, dropped = plot_forecasts(forecasts, tmp_path / f"chart{suffix}")
    assert dropped == []
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert b"<svg" in data[:2000]
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot_forecasts(forecasts, tmp_path / "chart.pdf")


def test_history_starts_at_first_usage() -> None:
    # a team that started 20 days ago with +1,000 tokens/day: the 40 empty days before
    # its start must not drag the linear slope down
    rows = [
        {
            "day": (START + timedelta(days=i)).isoformat(),
            "input_tokens": 1000 * (i - 39),
            "output_tokens": 0,
            "cost_nanos": 0,
        }
        for i in range(40, 60)
    ]
    [series] = daily_series(rows, [], START, END)
    fc = forecast_series(series, "tokens", 5, model="linear")
    assert fc.start == START + timedelta(days=40) and fc.fit.n == 20
    assert fc.fit.daily_growth == pytest.approx(1000)
    assert fc.to_dict()["history_start"] == (START + timedelta(days=40)).isoformat()
