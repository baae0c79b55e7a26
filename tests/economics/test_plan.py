"""Capacity planning: throughput route, FLOPs route and the seed's agents-1b claim."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tokenomy.economics import (
    SCENARIOS,
    TOKENS_PER_TASK_PRESETS,
    FactoryProfile,
    build_profile,
    factory_cost,
    plan_flops,
    plan_scenario,
    plan_throughput,
)
from tokenomy.economics.decimals import sig
from tokenomy.economics.plan import peak_flops_of, tokens_per_task


def h100(**values: object) -> FactoryProfile:
    return build_profile("h100-sxm", [({"gpu": "h100-sxm", **values}, "test {key}")])


def test_agents_1b_is_141500_h100_at_full_bf16_peak() -> None:
    stated, realistic = plan_scenario(SCENARIOS["agents-1b"], h100())
    # 1e9 agents x 1 tok/s x 2 x 70e9 FLOP / 989.4e12 FLOP/s = 141,500.9
    assert abs(stated.gpus_exact - 141_500) / 141_500 < D("0.001")
    assert stated.gpus % 8 == 0 and stated.gpus >= stated.gpus_exact
    assert stated.servers == 17_688 and stated.gpus == 141_504
    assert abs(stated.gpus - 141_500) / 141_500 < D("0.001")
    # the same demand at 30% of peak needs 1 / 0.3 as many GPUs
    assert sig(realistic.gpus_exact, 12) == sig(stated.gpus_exact / D("0.3"), 12)
    assert realistic.profile.utilization == D("0.3")
    assert any("optimistic" in n for n in stated.notes)


def test_agents_1b_power_and_cost() -> None:
    stated, _ = plan_scenario(SCENARIOS["agents-1b"], h100())
    # IT: 141,504 x 1.275 kW (DGX H100 10.2 kW / 8); at the meter: x 1.73 / 1.275
    assert stated.mw_it == D("180.4176")
    assert sig(stated.mw_facility, 9) == D("244.801920")
    assert sig(stated.mwh_per_day, 9) == sig(D("244.80192") * 24, 9)
    per_gpu_hour = factory_cost(h100()).cost_per_hour
    assert stated.cost_per_day == 141_504 * per_gpu_hour * 24
    tokens_per_day = D(10) ** 9 * 86_400
    assert stated.tokens_per_day == tokens_per_day
    assert sig(stated.cost_per_mtok, 12) == sig(stated.cost_per_day / (tokens_per_day / 10**6), 12)


def test_throughput_route_by_hand() -> None:
    # 10,000 agents x 20 tasks x 100,000 tokens = 2e10 tokens/day = 231,481.48 tok/s;
    # / (2,500 tok/s x 0.6) = 154.32 GPUs -> 20 servers of 8 = 160 GPUs
    profile = h100(throughput=2500, utilization=D("0.6"))
    result = plan_throughput(
        profile, agents=D(10_000), tasks_per_day=D(20), tokens_per_task=tokens_per_task("moderate")
    )
    assert result.tokens_per_day == D("2e10")
    assert sig(result.peak_tokens_per_s, 8) == D("231481.48")
    assert sig(result.gpus_exact, 6) == D("154.321")
    assert (result.servers, result.gpus) == (20, 160)
    assert result.mw_it == D("0.204")  # 160 x 1.275 kW
    per_gpu_hour = factory_cost(h100()).cost_per_hour
    assert result.cost_per_day == 160 * per_gpu_hour * 24
    # sizing for a 3x busier peak hour triples the fleet before rounding
    peaky = plan_throughput(
        profile, agents=D(10_000), tasks_per_day=D(20), tokens_per_task=D(100_000), peak_factor=D(3)
    )
    assert sig(peaky.gpus_exact, 12) == sig(result.gpus_exact * 3, 12)
    assert peaky.cost_per_mtok > result.cost_per_mtok


def test_flops_route_with_fp8_and_other_server_size() -> None:
    profile = build_profile("b200", [({"gpu": "b200", "utilization": D("0.25")}, "t {key}")])
    peak = peak_flops_of(profile, "fp8")
    assert peak == D("4500e12")
    result = plan_flops(
        profile,
        agents=D(1_000_000),
        tokens_per_s_per_agent=D(2),
        active_params=D("37e9"),
        peak_flops=peak,
        precision="fp8",
        gpus_per_server=72,
    )
    # 1e6 x 2 x 2 x 37e9 / (4.5e15 x 0.25) = 131.56 -> 2 racks of 72
    assert sig(result.gpus_exact, 6) == D("131.556")
    assert (result.servers, result.gpus) == (2, 144)


def test_presets_and_errors() -> None:
    assert TOKENS_PER_TASK_PRESETS == {
        "chat": 2_000,
        "moderate": 100_000,
        "complex": 1_000_000,
        "itinerary": 930_000,
    }
    assert tokens_per_task("Itinerary") == 930_000
    assert tokens_per_task("1_500") == 1500
    with pytest.raises(ValueError, match="tokens_per_task: a number or one of chat"):
        tokens_per_task("huge")
    with pytest.raises(ValueError, match="throughput: required"):
        plan_throughput(h100(), agents=D(1), tasks_per_day=D(1), tokens_per_task=D(1))
    with pytest.raises(ValueError, match=r"precision: .* has no fp4"):
        peak_flops_of(h100(), "fp4")
    with pytest.raises(ValueError, match="agents: must be > 0"):
        plan_flops(
            h100(), agents=D(0), tokens_per_s_per_agent=D(1), active_params=D(1), peak_flops=D(1)
        )


def test_plan_result_json_keys() -> None:
    stated, _ = plan_scenario(SCENARIOS["agents-1b"], h100())
    data = stated.to_dict()
    for key in (
        "gpus",
        "servers",
        "mw_it",
        "mw_facility",
        "cost_per_day",
        "cost_per_mtok",
        "assumptions",
        "mwh_per_day",
    ):
        assert key in data
    names = {a["name"] for a in data["assumptions"]}
    assert {"agents", "active_params", "peak_flops", "utilization", "pue", "capex"} <= names
