"""Break-even and plan against what the workload really pays, on generated ledgers.

The ledger's calls cost exactly $2 per Mtok (cache discounts and a cheaper model mix in
real life); gpt-4o's list price at 80% input is $4 per Mtok. Savings and payback must use
the $2 by default, with the $4 beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.economics.conftest import TODAY
from tests.economics.series import flat_weekend_dips, growth, import_rows, rows
from tokenomy import clock
from tokenomy.economics import build_profile, plan_throughput
from tokenomy.economics.breakeven import ApiPrice, MonthlyDemand, breakeven
from tokenomy.economics.decimals import sig

Invoke = Callable[..., Any]
NOON_MS = int(datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC).timestamp() * 1000)
BOX = [
    "--capex", "36000", "--life-years", "3", "--cost-of-capital", "0", "--power-kw", "1",
    "--pue", "1.5", "--electricity", "0.10", "--ops-per-year", "1200",
    "--input-cost-ratio", "1",
]  # fmt: skip


@pytest.fixture
def workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """flat: 30 Mtok a day at $2/Mtok; growing: 3%/day from 10 Mtok."""
    monkeypatch.setattr(clock, "now_ms", lambda: NOON_MS)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    history = rows(flat_weekend_dips(3e7, 1.0), 60, team="flat", noise=0.0) + rows(
        growth(1e7, 0.03), 60, team="growing", noise=0.0
    )
    import_rows(url, tmp_path / "h.jsonl", history)
    return url


def run(cli: Invoke, *args: str) -> Any:
    result = cli("breakeven", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output, parse_float=D)


def test_from_ledger_uses_the_effective_price_with_the_list_price_beside(
    cli: Invoke, workload: str
) -> None:
    data = run(cli, *BOX, "--throughput", "1000", "--from-ledger", "--team", "flat",
               "--db", workload)  # fmt: skip
    assert data["baseline"] == "effective"
    assert data["api_price_per_mtok"] == 2  # the ledger's cost / tokens
    assert data["list_price_per_mtok"] == 4  # gpt-4o list at 80% input: 0.8 x 2.5 + 0.2 x 10
    demand = data["demand_mtok_per_month"]  # 30 Mtok x 730 / 24 days
    assert abs(demand - D(30) * D(730) / 24) < D("0.1")
    assert sig(D(data["cloud_cost_per_month"]), 6) == sig(demand * 2, 6)
    assert sig(D(data["savings_per_month"]), 6) == sig(demand * 2 - D("1209.5"), 6)
    assert sig(D(data["savings_per_month_at_list"]), 6) == sig(demand * 4 - D("1209.5"), 6)
    # the local $/Mtok at the utilization the demand gives, not at the assumed 100%
    assert sig(D(data["local_cost_per_mtok_at_demand"]), 6) == sig(D("1209.5") / demand, 6)
    assert data["local_cost_per_mtok"] < data["local_cost_per_mtok_at_demand"]
    # flat demand: payback by hand, 36,000 / (912.5 x 2 - 209.5)
    by_hand = D(36000) / (demand * 2 - D("209.5"))
    assert abs(data["payback_months_flat_demand"] - by_hand) < D("0.05")
    # a flat history projects flat: the forecast payback is the flat one
    assert abs(data["payback_months"] / data["payback_months_flat_demand"] - 1) < D("0.01")
    listed = run(cli, *BOX, "--throughput", "1000", "--from-ledger", "--team", "flat",
                 "--baseline", "list", "--db", workload)  # fmt: skip
    assert listed["api_price_per_mtok"] == 4 and listed["list_price_per_mtok"] == 2
    assert listed["payback_months"] < data["payback_months"] / 2


def test_growing_demand_is_projected_over_the_payback_period(cli: Invoke, workload: str) -> None:
    data = run(cli, *BOX, "--throughput", "1000", "--from-ledger", "--team", "growing",
               "--db", workload)  # fmt: skip
    assert data["payback_months"] < data["payback_months_flat_demand"]
    names = {a["name"]: a for a in data["assumptions"]}
    assert "growing" in names["demand_projection"]["source"]
    flat = run(cli, *BOX, "--throughput", "1000", "--from-ledger", "--team", "growing",
               "--flat", "--db", workload)  # fmt: skip
    assert flat["payback_months"] == flat["payback_months_flat_demand"]


def test_utilization_changes_savings_and_payback(cli: Invoke, workload: str) -> None:
    # capacity 1,314 Mtok/month at 500 tok/s; at 50% the demand (912.5) exceeds it
    full = run(cli, *BOX, "--throughput", "500", "--from-ledger", "--team", "flat",
               "--utilization", "1", "--db", workload)  # fmt: skip
    half = run(cli, *BOX, "--throughput", "500", "--from-ledger", "--team", "flat",
               "--utilization", "0.5", "--db", workload)  # fmt: skip
    assert half["savings_per_month"] < full["savings_per_month"]
    assert half["payback_months"] > full["payback_months"]
    assert half["usable_mtok_per_month"] == full["usable_mtok_per_month"] / 2


def test_sensitivity_and_npv_by_hand() -> None:
    profile = build_profile(
        "box",
        [
            (
                {"capex": 36000, "life_years": 3, "cost_of_capital": 0, "power_kw": 1,
                 "avg_draw": 1, "pue": D("1.5"), "electricity": D("0.10"),
                 "ops_per_year": 1200, "throughput": 1000, "input_cost_ratio": 1},
                "t {key}",
            )
        ],
    )  # fmt: skip
    demand = MonthlyDemand(D(1000), D("0.5"), "t")
    api = ApiPrice(D(2), None, None, None, "t")
    r = breakeven(profile, api, demand, sensitivity=True)
    # NPV at 0%: 36 months x (2,000 - 209.5) - 36,000
    assert r.npv == 36 * (D(2000) - D("209.5")) - 36000
    discounted = breakeven(profile, api, demand, discount_rate=D("0.1"))
    assert discounted.npv is not None and discounted.npv < r.npv
    grid = {(c.utilization, c.api_price_per_mtok): c for c in r.sensitivity}
    u = r.demand_utilization
    assert u is not None and len(grid) == 9
    base = grid[u, D(2)]
    assert sig(base.payback_months, 6) == sig(r.payback_months, 6)  # type: ignore[arg-type]
    assert grid[u, D(3)].payback_months < base.payback_months  # type: ignore[operator]
    assert grid[u * D("1.5"), D(2)].local_cost_per_mtok < base.local_cost_per_mtok
    assert grid[u * D("0.5"), D(1)].payback_months is None  # never pays back


def test_sensitivity_table_in_the_cli(cli: Invoke, workload: str) -> None:
    result = cli("breakeven", *BOX, "--throughput", "1000", "--from-ledger", "--team", "flat",
                 "--sensitivity", "--db", workload)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sensitivity" in result.output and "npv" in result.output


def test_plan_and_breakeven_size_the_same_workload_the_same_way(cli: Invoke) -> None:
    profile = build_profile(
        "h", [({"gpu": "h100-sxm", "throughput": 3000, "utilization": 1}, "t {key}")]
    )
    # 3,000 tok/s measured at 50% input; at 90% input: x (0.5 x 0.25 + 0.5) / (0.9 x 0.25 + 0.1)
    plan = plan_throughput(
        profile, agents=D(1), tasks_per_day=D(1), tokens_per_task=D(86_400 * 5769),
        input_share=D("0.9"), gpus_per_server=1,
    )  # fmt: skip
    assert sig(plan.gpus_exact, 4) == D(1)  # 5,769 tok/s of demand: one GPU at this mix
    be = breakeven(profile, ApiPrice(D(2), None, None, None, "t"), input_share=D("0.9"))
    assert be.throughput is not None
    assert sig(be.throughput.per_gpu, 4) == D(5769)
    names = {a["name"]: a["value"] for a in plan.to_dict()["assumptions"]}
    assert names["mix_factor"] == sig(be.throughput.mix_factor)
    assert names["hours_per_month"] == 730
    data = json.loads(
        cli(
            "plan", "--agents", "10000", "--tasks-per-day", "20", "--tokens-per-task",
            "moderate", "--gpu", "h100-sxm", "--throughput", "2500", "--utilization", "0.6",
            "-f", "json",
        ).output,
        parse_float=D,
    )  # fmt: skip
    assert data["gpus"] == 160 and data["upfront_capex"] == 160 * 33750
    assert sig(D(data["cost_per_month"]), 8) == sig(data["cost_per_day"] * D(730) / 24, 8)
    gpus_row = next(a for a in data["assumptions"] if a["name"] == "gpus")
    assert gpus_row["value"] == 160 and "computed" in gpus_row["source"]


def test_rent_adds_no_operations_cost_unless_asked(cli: Invoke) -> None:
    rented = json.loads(
        cli("factory", "--gpu", "h100-sxm", "--rent-per-hour", "2", "--throughput", "1000",
            "-f", "json").output,
        parse_float=D,
    )  # fmt: skip
    ops = next(a for a in rented["assumptions"] if a["name"] == "ops_per_year")
    assert ops["value"] == 0 and "rent" in ops["source"]
    assert rented["ops_per_hour"] == 0
    explicit = json.loads(
        cli("factory", "--gpu", "h100-sxm", "--rent-per-hour", "2", "--ops-per-year", "876",
            "--throughput", "1000", "-f", "json").output,
        parse_float=D,
    )  # fmt: skip
    assert explicit["ops_per_hour"] == D("0.1")
    args = [
        "plan", "--agents", "100", "--tasks-per-day", "10", "--tokens-per-task", "chat",
        "--gpu", "h100-sxm", "--throughput", "2500", "--rent-per-hour", "2", "-f", "json",
    ]  # fmt: skip
    with_power = json.loads(cli(*args, "--rent-excludes-power").output, parse_float=D)
    without = json.loads(cli(*args).output, parse_float=D)
    assert with_power["cost_per_day"] > without["cost_per_day"]
    assert with_power["upfront_capex"] == 0


def test_csv_names_and_json_numbers_are_clean(cli: Invoke) -> None:
    csv = cli("plan", "--scenario", "agents-1b", "-f", "csv").output.splitlines()
    names = [line.split(",")[0] for line in csv[1:]]
    assert all(n == n.strip() and " " not in n for n in names), names
    assert "gpus_realistic" in names
    values = [line.split(",")[1] for line in csv[1:]]
    assert all(len(v.replace(".", "").strip("0").lstrip("-")) <= 10 for v in values), values
    data = json.loads(cli("plan", "--scenario", "agents-1b", "-f", "json").output)
    pue = next(a for a in data["assumptions"] if a["name"] == "pue")
    assert pue["value"] == 1.356862745  # 10 significant digits, not 1.3568627450980393


def test_days_window_is_full_days_before_today(workload: str) -> None:
    from tokenomy.economics.workload import ledger_demand
    from tokenomy.ledger import open_store

    store = open_store(workload)
    try:
        demand, _ = ledger_demand(store, {"team": "flat"}, 10, today=TODAY)
    finally:
        store.close()
    assert demand.source.startswith(f"ledger: {TODAY - timedelta(days=10)}")
    assert demand.effective_per_mtok == 2
