"""Cloud API versus local box: break-even and payback worked by hand, and from a ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from tests.economics.conftest import TODAY, event
from tokenomy.economics import (
    ApiPrice,
    FactoryProfile,
    MonthlyDemand,
    blended_api_price,
    breakeven,
    build_profile,
    catalog_api_price,
    demand_from_rows,
)
from tokenomy.economics.decimals import sig
from tokenomy.ledger import open_store


def box(**extra: Any) -> FactoryProfile:
    """A box worked by hand: $36,000 over 3 years straight line, 1 kW x PUE 1.5 at $0.10,
    $1,200/year ops, 1,000 tok/s, input tokens costed like output (ratio 1: mix-neutral)."""
    values = {
        "capex": 36000,
        "life_years": 3,
        "cost_of_capital": 0,
        "power_kw": 1,
        "avg_draw": 1,
        "pue": D("1.5"),
        "electricity": D("0.10"),
        "ops_per_year": 1200,
        "throughput": 1000,
        "input_cost_ratio": 1,
    }
    return build_profile("box", [(values, "test {key}"), (extra, "override {key}")])


def api(price: str) -> ApiPrice:
    return ApiPrice(D(price), None, None, None, "test")


def test_breakeven_and_payback_by_hand() -> None:
    demand = MonthlyDemand(D(1000), D("0.5"), "test")
    r = breakeven(box(), api("2"), demand)
    # monthly (730 h): capex 36,000 / 36 = 1,000; power 1 x 1.5 x 0.10 x 730 = 109.5; ops 100
    assert r.fixed_cost_per_month == D("1209.5")
    assert r.running_cost_per_month == D("209.5")
    assert r.upfront_capex == 36000
    # capacity: 1,000 tok/s x 3,600 x 730 / 1e6 = 2,628 Mtok/month
    assert r.capacity_mtok_per_month == D("2628")
    assert sig(r.local_cost_per_mtok, 6) == D("0.460236")  # 1,209.5 / 2,628
    assert r.breakeven_mtok_per_month == D("604.75")  # 1,209.5 / $2
    assert sig(r.breakeven_utilization, 6) == D("0.230118")  # type: ignore[arg-type]
    # 1,000 Mtok/month: cloud $2,000 vs local $1,209.5 -> saves $790.5/month
    assert r.cloud_cost_per_month == 2000
    assert r.local_cost_per_month == D("1209.5")
    assert r.savings_per_month == D("790.5")
    # payback: 36,000 / (2,000 avoided - 209.5 power and ops) = 20.1061 months
    assert sig(r.payback_months, 6) == D("20.1061")  # type: ignore[arg-type]
    assert sig(r.demand_utilization, 6) == D("0.380518")  # type: ignore[arg-type]


def test_demand_beyond_capacity_overflows_to_cloud() -> None:
    r = breakeven(box(), api("2"), MonthlyDemand(D(3000), D("0.5"), "test"))
    assert r.local_cost_per_month == D("1209.5") + (3000 - 2628) * 2
    assert any("overflow" in n for n in r.notes)
    assert sig(r.payback_months, 6) == sig(D(36000) / (D(2628) * 2 - D("209.5")), 6)  # type: ignore[arg-type]


def test_never_breaks_even_and_rented_boxes() -> None:
    cheap = breakeven(box(), api("0.10"), MonthlyDemand(D(100), D("0.5"), "test"))
    assert cheap.breakeven_utilization is not None and cheap.breakeven_utilization > 1
    assert cheap.payback_months is None
    assert any("never" in n for n in cheap.notes)
    rented = breakeven(box(rent_per_hour=D("0.5")), api("2"), MonthlyDemand(D(500), D("0.5"), "t"))
    assert rented.upfront_capex == 0 and rented.payback_months is None
    assert rented.fixed_cost_per_month == D("0.5") * 730 + 100  # rent + ops (rent has power)
    assert any("rented" in n for n in rented.notes)


def test_input_heavy_mix_raises_capacity() -> None:
    # throughput measured at 50% input; input costs 0.25 of output. An agent mix of 90%
    # input yields (0.5 x 0.25 + 0.5) / (0.9 x 0.25 + 0.1) = 0.625 / 0.325 = 1.923x tokens.
    profile = box(input_cost_ratio=D("0.25"))
    r = breakeven(profile, api("2"), input_share=D("0.9"))
    assert sig(r.capacity_mtok_per_month, 6) == sig(D(2628) * D("0.625") / D("0.325"), 6)


def test_api_prices() -> None:
    p = blended_api_price(D("2.5"), D("10"), D("0.8"), "x")
    assert p.blended_per_mtok == D("4.0")
    gpt4o = catalog_api_price("openai/gpt-4o", D("0.5"))
    assert gpt4o.blended_per_mtok == D("6.25")  # ($2.50 + $10.00) / 2
    assert "genai-prices" in gpt4o.source
    with pytest.raises(ValueError, match="api_model"):
        catalog_api_price("no-such-model-xyz", D("0.5"))
    with pytest.raises(ValueError, match="input_share"):
        blended_api_price(D(1), D(2), D("1.5"), "x")


def test_demand_from_a_real_ledger(ledger: Callable[[list[Any]], str]) -> None:
    # 30 days x (27 Mtok in + 3 Mtok out) = 900 Mtok over 30 days; a month is 730/720 of it
    events = [
        event(
            TODAY - timedelta(days=d),
            input_tokens=27_000_000,
            output_tokens=3_000_000,
            cost_nanos=0,
            n=d,
        )
        for d in range(1, 31)
    ]
    events.append(
        event(
            TODAY - timedelta(days=3),
            input_tokens=5,
            output_tokens=5,
            cost_nanos=0,
            team="other",
            n=99,
        )
    )
    url = ledger(events)
    store = open_store(url)
    try:
        rows = store.aggregate(None, None, [], {"team": "research"})
    finally:
        store.close()
    demand = demand_from_rows(rows, days=30)
    assert demand.input_share == D("0.9")
    assert sig(demand.mtok_per_month, 10) == sig(D(900) * 730 / 720, 10)
    r = breakeven(box(), api("2"), demand)
    assert r.input_share == D("0.9")
    assert sig(r.cloud_cost_per_month, 10) == sig(D(1825), 10)  # type: ignore[arg-type]
