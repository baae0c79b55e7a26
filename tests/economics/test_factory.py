"""The token-factory cost model, the catalog and factory profiles from the config."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tokenomy.config import parse_config
from tokenomy.economics import (
    build_profile,
    crf,
    factory_cost,
    factory_token_prices,
    load_catalog,
    split_input_output,
    validate_factory_table,
)
from tokenomy.economics.decimals import sig
from tokenomy.errors import ConfigError


def cost_of(**values: Any) -> Any:
    return factory_cost(build_profile("t", [(values, "test {key}")]))


def s6(value: D | None) -> D:
    """Six significant digits, as the worked examples are stated."""
    assert value is not None
    return sig(value, 6)


# -- worked examples from the issue ----------------------------------------------------------
def test_rent_1_30_per_gpu_hour_at_1000_tokens_per_s() -> None:
    # $1.30 / (1,000 tok/s x 3,600 s / 1e6) = $0.361111 per Mtok
    cost = cost_of(rent_per_hour=D("1.30"), throughput=1000)
    assert s6(cost.cost_per_mtok) == D("0.361111")
    assert cost.cost_per_hour == D("1.30")
    assert cost.electricity_per_hour == 0  # the rent pays the power


def test_all_in_1_73_kw_at_1000_tokens_per_s() -> None:
    # 1,000 tok/s x 1,000 / 1.73 kW = 578,035 tok/s per MW; 1,730 W / 1,000 tok/s = 1.73 J
    cost = cost_of(capex=0, power_kw=D("1.73"), avg_draw=1, pue=1, throughput=1000)
    assert s6(cost.tokens_per_s_per_mw) == D("578035")
    assert cost.joules_per_token == D("1.73")
    assert s6(cost.kwh_per_mtok) == D("0.480556")  # 1.73 J x 1e6 / 3.6e6 J/kWh


def test_catalog_h100_reproduces_inferencex_all_in_power() -> None:
    cost = cost_of(gpu="h100-sxm", throughput=1000)
    assert s6(cost.all_in_kw) == D("1.73")
    assert s6(cost.tokens_per_s_per_mw) == D("578035")
    assert s6(cost.joules_per_token) == D("1.73")


# -- capital: straight line vs capital recovery factor ----------------------------------------
def test_straight_line_capex() -> None:
    # 40,000 / (4 x 8,760) = 1.141553 $/h
    cost = cost_of(capex=40000, life_years=4, cost_of_capital=0, power_kw=0)
    assert s6(cost.capex_per_hour) == D("1.14155")
    assert crf(D(0), D(4)) == D("0.25")


def test_capital_recovery_factor_capex() -> None:
    # CRF(8%, 4) = 0.08 x 1.08^4 / (1.08^4 - 1) = 0.08 x 1.36048896 / 0.36048896 = 0.301921
    assert s6(crf(D("0.08"), D(4))) == D("0.301921")
    cost = cost_of(capex=40000, life_years=4, cost_of_capital=D("0.08"), power_kw=0)
    # 40,000 x 0.3019208045 / 8,760 = 1.378634 $/h, above straight line: money has a price
    assert s6(cost.capex_per_hour) == D("1.37863")
    assert cost.capex_per_hour > 40000 / D(4 * 8760)


def test_hourly_split_by_hand() -> None:
    # capex 20,000 over 5 y straight: 0.456621; power 1 kW x 0.8 x 1.5 x $0.10 = 0.12;
    # ops 876 / 8,760 = 0.1; total 0.676621 $/h; at 2,000 tok/s x 50%: 3.6 Mtok/h.
    cost = cost_of(
        capex=20000,
        life_years=5,
        cost_of_capital=0,
        power_kw=1,
        avg_draw=D("0.8"),
        pue=D("1.5"),
        electricity=D("0.10"),
        ops_per_year=876,
        throughput=2000,
        utilization=D("0.5"),
    )
    assert s6(cost.capex_per_hour) == D("0.456621")
    assert cost.electricity_per_hour == D("0.12")
    assert cost.ops_per_hour == D("0.1")
    assert s6(cost.cost_per_hour) == D("0.676621")
    assert s6(cost.cost_per_mtok) == D("0.187950")
    assert s6(cost.electricity_share_total) == D("0.177352")  # 0.12 / 0.676621
    assert s6(cost.electricity_share_opex) == D("0.545455")  # 0.12 / 0.22
    # J/token while serving: 1.2 kW all-in / 2,000 tok/s = 0.6 J
    assert cost.joules_per_token == D("0.6")


def test_gpus_scale_cost_not_cost_per_token() -> None:
    one = cost_of(gpu="b200", throughput=3000)
    eight = cost_of(gpu="b200", throughput=3000, gpus=8)
    assert eight.cost_per_hour == one.cost_per_hour * 8
    assert sig(eight.cost_per_mtok, 20) == sig(one.cost_per_mtok, 20)  # type: ignore[arg-type]


def test_utilization_spreads_idle_hours_over_tokens() -> None:
    busy = cost_of(gpu="h200", throughput=1500, utilization=1)
    half = cost_of(gpu="h200", throughput=1500, utilization=D("0.5"))
    assert sig(half.cost_per_mtok, 20) == sig(busy.cost_per_mtok * 2, 20)  # type: ignore[arg-type,operator]
    assert half.joules_per_token == busy.joules_per_token  # the machine, while serving


# -- "electricity is over 60% of token cost" ------------------------------------------------
def test_electricity_share_h100_with_and_without_hardware() -> None:
    cost = cost_of(gpu="h100-sxm", throughput=1000)
    # hardware amortized: 0.1384 / 1.358700 = 10.19% -- within the ~7-11% band
    assert s6(cost.electricity_share_total) == D("0.101862")
    # operating cost only (hardware excluded): 0.1384 / (0.1384 + 0.0570776) = 70.8%
    assert cost.electricity_share_opex is not None and cost.electricity_share_opex > D("0.6")
    # at a cheaper $0.053/kWh the full-cost share falls to ~7%
    cheap = cost_of(gpu="h100-sxm", throughput=1000, electricity=D("0.053"))
    assert cheap.electricity_share_total is not None
    assert D("0.065") < cheap.electricity_share_total < D("0.075")


# -- prefill vs decode ----------------------------------------------------------------------
def test_split_input_output_averages_back_to_blended() -> None:
    inp, out = split_input_output(D("0.3611111111"), D("0.25"), D("0.5"))
    assert s6(inp) == D("0.144444")
    assert s6(out) == D("0.577778")
    assert s6(D("0.5") * inp + D("0.5") * out) == D("0.361111")
    assert inp == out * D("0.25")


# -- catalog --------------------------------------------------------------------------------
REQUIRED = (
    "h100-sxm",
    "h200",
    "b200",
    "gb200",
    "mi300x",
    "mi325x",
    "mi355x",
    "rtx-4090-ws",
    "dgx-spark",
    "cpu-box",
)


def test_catalog_has_required_hardware_and_a_source_for_every_default() -> None:
    cat = load_catalog()
    assert set(REQUIRED) <= set(cat.gpus)
    assert {"datacenter", "box"} <= {g.kind for g in cat.gpus.values()}
    for name, value in cat.defaults.items():
        assert cat.default_sources.get(name), f"defaults.{name} has no source"
        assert value is not None
    for spec in cat.gpus.values():
        for key in (*spec.values, "peak_tflops", "tdp_w"):
            assert spec.sources.get(key), f"{spec.name}.{key} has no source"
        assert spec.peak_flops, spec.name
        assert spec.values["capex"] > 0 and spec.values["power_kw"] > 0


def test_catalog_inferencex_reference_numbers() -> None:
    cat = load_catalog()
    assert cat.get("h100-sxm").all_in_kw == D("1.73")
    assert cat.get("h100-sxm").reference_tco_per_hour == D("1.30")
    assert cat.get("b200").all_in_kw == D("2.17")
    assert cat.get("b200").reference_tco_per_hour == D("1.95")
    assert cat.get("H100-SXM").peak_flops["bf16"] == D("989.4e12")


def test_unknown_gpu_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"^gpu: unknown GPU/box 'a100'.*h100-sxm"):
        build_profile("x", [({"gpu": "a100"}, "flag {flag}")])


# -- [factories.NAME] validation -------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"gpu": "h100-sxm", "throughput": 1000, "pue": D("0.9")}, r"^pue: must be >= 1"),
        ({"gpu": "h100-sxm", "throughput": 1000, "watts": 5}, r"^watts: unknown key"),
        ({"gpu": "h100-sxm"}, r"^throughput: required"),
        ({"power_kw": 1, "throughput": 100}, r"^capex: required"),
        ({"capex": 1, "rent_per_hour": 1, "power_kw": 1, "throughput": 1}, r"^rent_per_hour:"),
        ({"gpu": "h100-sxm", "throughput": "fast"}, r"^throughput: expected a number"),
        ({"gpu": "h100-sxm", "throughput": 10, "utilization": D("1.5")}, r"^utilization: must be"),
        ({"gpu": "h100-sxm", "throughput": 10, "gpus": D("1.5")}, r"^gpus: must be a whole"),
        (
            {"gpu": "h100-sxm", "throughput": 10, "rent_includes_power": "yes"},
            r"^rent_includes_power:",
        ),
        ({"gpu": 7, "throughput": 10}, r"^gpu:"),
    ],
)
def test_validate_factory_table_names_the_bad_field(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_factory_table("lab", table)


def test_config_reports_factory_errors_with_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"factories": {"lab": {"gpu": "h100-sxm", "throughput": 900, "avg_draw": 0}}}, "t.toml"
        )
    assert info.value.key == "factories.lab"
    assert str(info.value).startswith("t.toml: factories.lab: avg_draw: must be > 0")


def test_factory_token_prices_for_the_gateway() -> None:
    settings = parse_config(
        {
            "factories": {
                "rented": {"rent_per_hour": 1.3, "throughput": 1000},
                "closet": {
                    "gpu": "rtx-4090-ws",
                    "throughput": 40,
                    "input_cost_ratio": 0.2,
                    "throughput_input_share": 0.9,
                },
            }
        }
    )
    prices = factory_token_prices(settings.factories)
    assert set(prices) == {"rented", "closet"}
    inp, out = prices["rented"]
    assert (s6(inp), s6(out)) == (D("0.144444"), D("0.577778"))
    c_in, c_out = prices["closet"]
    assert abs(c_in - c_out * D("0.2")) < D("1e-8")  # both rounded to 1e-9 $/Mtok
    # the mix the throughput was measured at averages back to the blended cost
    blended = cost_of(gpu="rtx-4090-ws", throughput=40).cost_per_mtok
    assert blended is not None
    assert abs(D("0.9") * c_in + D("0.1") * c_out - blended) < D("1e-6")


def test_layers_record_sources() -> None:
    profile = build_profile(
        "lab",
        [
            ({"gpu": "mi300x", "throughput": 800}, "config [factories.lab] {key}"),
            ({"electricity": D("0.05")}, "flag {flag}"),
        ],
    )
    assert profile.sources["electricity"] == "flag --electricity"
    assert profile.sources["throughput"] == "config [factories.lab] throughput"
    assert "InferenceX" in profile.sources["pue"]
    names = [a["name"] for a in profile.assumptions()]
    assert names[0] == "gpu" and "capex" in names and "pue" in names
