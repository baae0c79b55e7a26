"""docs/economics.md documents every catalog entry, default, config key and JSON key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

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
    assert sorted(k for k in keys if not documented(k)) == []


def test_commands_and_worked_examples_are_documented() -> None:
    for command in ("factory", "plan", "breakeven", "forecast"):
        assert f"tokenomy {command}" in DOC
    for figure in (
        "0.361111",
        "578,035",
        "1.73 J/token",
        "141,500",
        "604.75",
        "20.1 months",
        "70.8%",
        "10.2%",
        "~7–11%",
    ):
        assert figure in DOC, figure
