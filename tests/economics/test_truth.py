"""Forecasts on generated ledgers with known truth: growth, flat with weekend dips, a step.

The ledgers are built with ``tokenomy ledger import`` (tests/economics/series.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.economics.conftest import TODAY, day_ms
from tests.economics.series import flat_weekend_dips, growth, import_rows, rows, step
from tokenomy.economics import forecast, forecast_series
from tokenomy.economics.forecast import DailySeries, SeriesForecast
from tokenomy.economics.plot import MAX_GROUPS, build_figure, plot_forecasts
from tokenomy.ledger import open_store

DAYS = 60
START = TODAY - timedelta(days=DAYS)
END = TODAY - timedelta(days=1)
STEP_DAY = 40


@pytest.fixture(scope="module")
def truth_ledger(tmp_path_factory: pytest.TempPathFactory) -> str:
    """research grows 3%/day, support is flat with weekend dips, batch steps up 2.5x."""
    tmp = tmp_path_factory.mktemp("truth")
    url = f"sqlite:///{tmp / 'ledger.db'}"
    history = (
        rows(growth(1e6, 0.03), DAYS, team="research", seed=1)
        + rows(flat_weekend_dips(5e6), DAYS, team="support", seed=2)
        + rows(step(2e6, 2.5, STEP_DAY), DAYS, team="batch", seed=3, model="gpt-4o-mini")
    )
    result = import_rows(url, tmp / "history.jsonl", history)
    assert result.imported == len(history) == DAYS * 3 * 3
    return url


def team_forecasts(url: str, horizon: int = 30) -> dict[tuple[str, str], SeriesForecast]:
    store = open_store(url)
    try:
        data = store.aggregate(day_ms(START, 0), day_ms(TODAY, 0), ["team", "day"])
    finally:
        store.close()
    results, notes = forecast(data, ["team"], START, END, horizon)
    assert notes == []
    return {(f.group["team"], f.metric): f for f in results}


def test_growth_is_recovered_with_good_fit_quality(truth_ledger: str) -> None:
    fc = team_forecasts(truth_ledger)["research", "tokens"]
    assert fc.fit.daily_growth == pytest.approx(0.03, abs=0.004)
    assert fc.trend == "growing" and fc.level_shift_day is None
    assert fc.fit.r2 > 0.95
    assert fc.mape is not None and fc.mape < 0.1
    assert fc.poor_fit is None
    d = fc.to_dict()
    assert d["r2"] == round(D(fc.fit.r2), 4) and d["mape"] == round(D(fc.mape), 4)
    # the mean of a log-normal day is above its median (the point)
    last = fc.projection[-1]
    assert last.mean is not None and last.point < last.mean < last.high


def test_flat_series_with_weekend_dips_is_flat_and_seasonal(truth_ledger: str) -> None:
    fc = team_forecasts(truth_ledger)["support", "tokens"]
    assert fc.trend == "flat"
    assert fc.doubling_days is None  # not "doubling in 1,624 days"
    factors = fc.fit.weekday_factors
    assert factors is not None
    # weekend days at 0.4 of weekdays: Sat/Mon ratio recovered
    assert factors[5] / factors[0] == pytest.approx(0.4, rel=0.05)
    assert fc.mape is not None and fc.mape < 0.1
    by_day = {p.day: p.point for p in fc.projection}
    saturday = next(d for d in by_day if d.weekday() == 5)
    monday = next(d for d in by_day if d.weekday() == 0)
    assert float(by_day[monday]) == pytest.approx(5e6, rel=0.05)
    assert float(by_day[saturday]) == pytest.approx(2e6, rel=0.05)


def test_level_shift_is_detected_not_projected_as_growth(truth_ledger: str) -> None:
    fc = team_forecasts(truth_ledger)["batch", "tokens"]
    assert fc.level_shift_day == START + timedelta(days=STEP_DAY)
    assert fc.fit.step_factor == pytest.approx(2.5, rel=0.05)
    assert fc.trend == "flat"
    # day +30 is the new level, 5M, not an exponential extrapolation (+37% before)
    assert float(fc.projection[-1].point) == pytest.approx(5e6, rel=0.05)
    d = fc.to_dict()
    assert d["level_shift_day"] == (START + timedelta(days=STEP_DAY)).isoformat()
    assert d["level_shift_factor"] == pytest.approx(D("2.5"), rel=D("0.05"))
    # the old model (trend only) overshoots the truth
    series = DailySeries({}, fc.start, fc.end, [int(v) for v in fc.history], [0] * len(fc.history))
    naive = forecast_series(series, "tokens", 30, seasonal=False)
    assert float(naive.projection[-1].point) > 1.25 * 5e6


def test_a_poor_fit_is_said() -> None:
    import random

    rng = random.Random(5)
    tokens = [int(1e6 * rng.choice([0.1, 1, 5, 20])) for _ in range(40)]
    series = DailySeries({}, START, START + timedelta(days=39), tokens, [0] * 40)
    fc = forecast_series(series, "tokens", 7)
    assert fc.mape is not None and fc.mape > 0.2
    assert fc.poor_fit is not None and "backtest error" in fc.poor_fit


def test_a_noise_free_step_inside_the_backtest_window_is_flat_and_explained() -> None:
    # 30 days at 1M tokens, then 14 at 2.5M: exact numbers, so every standard error is ~0.
    tokens = [1_000_000] * 30 + [2_500_000] * 14
    series = DailySeries({}, START, START + timedelta(days=43), tokens, [0] * 44)
    fc = forecast_series(series, "tokens", 7)
    assert fc.level_shift_day == START + timedelta(days=30)
    assert fc.trend == "flat" and fc.doubling_days is None  # not "doubling in 1e14 days"
    assert fc.projection[0].point == 2_500_000
    # The backtest cannot see a shift in its holdout: said as such, not as a bad fit.
    assert fc.poor_fit is not None and "level shift" in fc.poor_fit


def test_calendar_month_totals() -> None:
    # history Oct 20 .. Nov 14 at exactly 1,000 tokens a day: November = 30 x 1,000
    start, end = date(2026, 10, 20), date(2026, 11, 14)
    n = (end - start).days + 1
    series = DailySeries({}, start, end, [1000] * n, [10**9] * n)
    fc = forecast_series(series, "tokens", 3)
    month = fc.month()
    assert month["month"] == "2026-11"
    assert month["month_to_date"] == 14_000
    assert month["month_rest"] == 16_000
    assert month["month_total"] == month["month_total_mean"] == 30_000
    cost = forecast_series(series, "cost", 3).to_dict()
    assert cost["month_total"] == D(30)


def test_group_fields_are_not_overwritten_by_the_fit(
    truth_ledger: str, cli: Callable[..., Any]
) -> None:
    result = cli(
        "forecast",
        "--db",
        truth_ledger,
        "--by",
        "team,model",
        "--history",
        "60",
        "--as-of",
        TODAY.isoformat(),
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output, parse_float=D)
    models = {(f["team"], f["model"]) for f in data["forecasts"]}
    assert models == {("batch", "gpt-4o-mini"), ("research", "gpt-4o"), ("support", "gpt-4o")}
    assert {f["fit"] for f in data["forecasts"]} == {"exp"}
    for f in data["forecasts"]:
        assert {"r2", "mape", "trend", "month_total", "horizon_total_mean"} <= set(f)
    table = cli("forecast", "--db", truth_ledger, "--as-of", TODAY.isoformat(), "--by", "team")
    assert "r2" in table.output and "mape" in table.output and "month" in table.output
    csv = cli("forecast", "--db", truth_ledger, "--as-of", TODAY.isoformat(), "-f", "csv")
    header = csv.output.splitlines()[0].split(",")
    assert "r2" in header and all(h == h.strip() for h in header)


def test_chart_names_dropped_groups_and_keeps_the_legend_outside(tmp_path: Path) -> None:
    groups = MAX_GROUPS + 2
    data = [
        {
            "day": (START + timedelta(days=i)).isoformat(),
            "team": f"t{g:02d}",
            "input_tokens": int(1e6 * (g + 1) * 1.01**i),
            "output_tokens": 0,
            "cost_nanos": int(1e9 * (g + 1)),
        }
        for g in range(groups)
        for i in range(DAYS)
    ]
    forecasts, _ = forecast(data, ["team"], START, END, 14, metrics=("tokens",))
    fig, dropped = build_figure(forecasts, today=TODAY)
    # the two smallest groups are left out, and said
    assert dropped == ["team=t01 (tokens)", "team=t00 (tokens)"]
    (ax,) = fig.axes
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    labels = [t.get_text() for t in legend.get_texts()]
    assert f"today {TODAY}" in labels
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any(t.endswith("M") for t in ticks), ticks
    path, dropped_again = plot_forecasts(forecasts, tmp_path / "c.svg", today=TODAY)
    text = path.read_text(encoding="utf-8")
    assert "today" in text and dropped_again == dropped


def test_chart_draws_each_budget_against_its_limit(truth_ledger: str) -> None:
    from tokenomy.economics import BudgetToProject, project_budget

    fc = team_forecasts(truth_ledger, horizon=7)["research", "cost"]
    budget = BudgetToProject(
        {"team": "research"}, "usd", D(2000), D(100), None, TODAY + timedelta(days=29), "r"
    )
    flag = project_budget(budget, fc, TODAY)
    assert flag.path[-1][0] == TODAY + timedelta(days=29)
    fig, dropped = build_figure([fc], today=TODAY, budgets=[flag])
    assert dropped == []
    panel = fig.axes[-1]
    labels = [t.get_text() for t in panel.get_legend().get_texts()]
    assert "r: limit $2k" in labels and f"today {TODAY}" in labels
    limit_lines = [ln for ln in panel.get_lines() if list(ln.get_ydata()) == [2000.0, 2000.0]]
    assert len(limit_lines) == 1
    fig.canvas.draw()
    for ax in fig.axes:  # every panel keeps its dates (their x ranges differ)
        assert any(t.get_text() for t in ax.get_xticklabels()), ax.get_title()


def test_a_level_shift_raises_no_false_budget_alarm(truth_ledger: str) -> None:
    from tokenomy.economics import BudgetToProject, project_budget

    fc = team_forecasts(truth_ledger, horizon=0)["batch", "cost"]
    # the new level is 5 Mtok x $2 = $10/day: November costs $300, under a $330 budget
    budget = BudgetToProject(
        {"team": "batch"}, "usd", D(330), D(0), TODAY, TODAY + timedelta(days=29), "batch"
    )
    assert not project_budget(budget, fc, TODAY).runs_out
    series = DailySeries(
        {}, fc.start, fc.end, [0] * len(fc.history), [int(v * 10**9) for v in fc.history]
    )
    naive = forecast_series(series, "cost", 0, seasonal=False)  # trend only: the old model
    assert project_budget(budget, naive, TODAY).runs_out  # the false alarm
