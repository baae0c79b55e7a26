"""docs/economics.md documents every catalog entry, default, config key and JSON key."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from tokenomy.economics import (
    SCENARIOS,
    BudgetFlag,
    BudgetToProject,
    breakeven,
    build_profile,
    factory_cost,
    load_catalog,
    plan_scenario,
)
from tokenomy.economics.breakeven import ApiPrice, MonthlyDemand
from tokenomy.economics.decimals import human
from tokenomy.economics.forecast import DailySeries, forecast_series
from tokenomy.economics.profiles import TABLE_KEYS

DOC = (Path(__file__).parents[2] / "docs" / "economics.md").read_text(encoding="utf-8")


def documented(name: str) -> bool:
    return f"`{name}`" in DOC


def test_catalog_and_defaults_are_documented() -> None:
    cat = load_catalog()
    missing = [n for n in [*cat.gpus, *cat.defaults, *TABLE_KEYS] if not documented(n)]
    assert missing == []
    for spec in cat.gpus.values():
        assert f"{spec.values['capex']:,}" in DOC, spec.name


def test_json_keys_are_documented() -> None:
    profile = build_profile("t", [({"gpu": "h100-sxm", "throughput": 1000}, "t {key}")])
    keys = set(factory_cost(profile).to_dict())
    stated, _ = plan_scenario(SCENARIOS["agents-1b"], profile)
    keys |= set(stated.to_dict())
    keys |= set(
        breakeven(
            profile, ApiPrice(D(2), None, None, None, "t"), MonthlyDemand(D(10), D("0.5"), "t")
        ).to_dict()
    )
    budget = BudgetToProject({}, "usd", D(1), D(0), None, date(2026, 1, 1))
    keys |= set(BudgetFlag(budget, D(0), D(0), None, False, False).to_dict())
    sensitive = breakeven(
        profile,
        ApiPrice(D(2), None, None, None, "t"),
        MonthlyDemand(D(10), D("0.5"), "t"),
        sensitivity=True,
    ).to_dict()
    keys |= set(sensitive["sensitivity"][0])
    n = 30
    series = DailySeries(
        {}, date(2026, 10, 1), date(2026, 10, 30), [1000 + i for i in range(n)], [1] * n
    )
    fc = forecast_series(series, "tokens", 3).to_dict()
    keys |= set(fc) | set(fc["projection"][0])
    assert sorted(k for k in keys if not documented(k)) == []


def test_worked_examples_are_what_the_tool_prints(cli: Callable[..., Any]) -> None:
    """The docs' worked examples, regenerated: the figures the commands print now."""
    plan = json.loads(cli("plan", "--scenario", "agents-1b", "-f", "json").output, parse_float=D)
    assert f"**{plan['gpus_exact']:,.1f} GPUs**" in DOC  # 141,499.9, as the tool prints it
    assert f"${plan['upfront_capex']:,.0f} upfront" in DOC
    args = [
        "breakeven", "--api-price", "2", "--capex", "36000", "--life-years", "3",
        "--cost-of-capital", "0", "--power-kw", "1", "--pue", "1.5", "--electricity", "0.10",
        "--ops-per-year", "1200", "--throughput", "1000", "--input-cost-ratio", "1",
        "--demand-mtok", "1000", "--discount-rate", "0.08", "--sensitivity",
    ]  # fmt: skip
    be = json.loads(cli(*args, "-f", "json").output, parse_float=D)
    assert f"**${be['npv']:,.1f}**" in DOC
    assert f"**${be['local_cost_per_mtok_at_demand']}**" in DOC
    assert f"**{be['payback_months']:.1f} months**" in DOC
    assert f"**{be['breakeven_mtok_per_month']} Mtok/month" in DOC
    for c in be["sensitivity"]:
        payback = human(c["payback_months"]) if c["payback_months"] is not None else "never"
        row = (
            f"| {c['utilization'] * 100:.1f}% | {human(c['api_price_per_mtok'])} | "
            f"{human(c['local_cost_per_mtok'])} | {human(c['savings_per_month'])} | "
            f"{payback} | {human(c['npv'])} |"
        )
        assert row in DOC, row
    assert " ".join(args[1:7]) in " ".join(DOC.replace("\\\n", " ").split())


def test_commands_and_worked_examples_are_documented() -> None:
    for command in ("factory", "plan", "breakeven", "forecast", "ledger import"):
        assert f"tokenomy {command}" in DOC
    for figure in (
        "0.361111",
        "578,035",
        "1.73 J/token",
        "141,499.9",
        "604.75",
        "20.1 months",
        "70.8%",
        "10.2%",
        "~7–11%",
    ):
        assert figure in DOC, figure
