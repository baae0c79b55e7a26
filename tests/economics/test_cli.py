"""The economics commands, run through Typer on a small app that calls ``register``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.economics.conftest import TODAY, event, growth_events
from tokenomy.budgets.storage import set_budget
from tokenomy.database import open_database

Invoke = Callable[..., Any]


def ok_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output, parse_float=D)


@pytest.mark.parametrize("command", ["factory", "plan", "breakeven", "forecast"])
def test_every_help_has_an_example(cli: Invoke, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "Example: tokenomy " + command in result.output


def test_factory_json_worked_examples(cli: Invoke) -> None:
    data = ok_json(
        cli(
            "factory",
            "--rent-per-hour",
            "1.30",
            "--throughput",
            "1000",
            "--power-kw",
            "1.73",
            "--pue",
            "1",
            "--avg-draw",
            "1",
            "-f",
            "json",
        )
    )
    for key in (
        "cost_per_hour",
        "capex_per_hour",
        "electricity_per_hour",
        "ops_per_hour",
        "cost_per_mtok",
        "tokens_per_s_per_mw",
        "joules_per_token",
        "kwh_per_mtok",
        "electricity_share_total",
        "electricity_share_opex",
        "assumptions",
    ):
        assert key in data, key
    assert round(data["cost_per_mtok"], 6) == D("0.361111")
    assert round(data["tokens_per_s_per_mw"]) == 578_035
    assert data["joules_per_token"] == D("1.73")
    sources = {a["name"]: a["source"] for a in data["assumptions"]}
    assert sources["rent_per_hour"] == "flag --rent-per-hour"
    assert "Uptime" in sources["pue"] or sources["pue"] == "flag --pue"


def test_factory_table_prints_assumptions_and_catalog(cli: Invoke) -> None:
    result = cli("factory", "--gpu", "mi355x", "--throughput", "2000", "--utilization", "0.5")
    assert result.exit_code == 0, result.output
    for text in ("cost_per_mtok", "electricity_share_opex", "Assumptions", "InferenceX"):
        assert text in result.output
    listing = cli("factory", "--list", "-f", "json")
    names = {row["gpu"] for row in ok_json(listing)}
    assert {"h100-sxm", "gb200", "mi325x", "dgx-spark", "cpu-box"} <= names


def test_factory_from_config_profile(cli: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "tokenomy.toml"
    config.write_text(
        '[factories.closet]\ngpu = "rtx-4090-ws"\nthroughput = 50\nelectricity = 0.30\n',
        encoding="utf-8",
    )
    data = ok_json(
        cli(
            "factory",
            "--factory",
            "closet",
            "--config",
            str(config),
            "--utilization",
            "0.25",
            "-f",
            "json",
        )
    )
    sources = {a["name"]: a["source"] for a in data["assumptions"]}
    assert sources["electricity"] == "config [factories.closet] electricity"
    assert sources["utilization"] == "flag --utilization"
    assert data["electricity_per_hour"] == D("0.18")  # 0.6 kW x 1.0 x 1.0 x $0.30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["factory", "--gpu", "h100-sxm", "--pue", "0.5"], "pue: must be >= 1"),
        (["factory", "--gpu", "tpu-v9"], "unknown GPU/box"),
        (["factory", "--factory", "x"], "--factory needs --config"),
        (["plan", "--agents", "10", "--gpu", "h100-sxm"], "throughput route needs"),
        (["plan", "--scenario", "agents-2b"], "unknown 'agents-2b'"),
        (["breakeven", "--gpu", "dgx-spark", "--throughput", "100"], "give one of --api-model"),
        (["breakeven", "--gpu", "dgx-spark", "--api-price", "2"], "throughput: required"),
    ],
)
def test_errors_are_clear(cli: Invoke, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.output


def test_plan_agents_1b(cli: Invoke) -> None:
    data = ok_json(cli("plan", "--scenario", "agents-1b", "-f", "json"))
    for key in (
        "gpus",
        "servers",
        "mw_it",
        "mw_facility",
        "cost_per_day",
        "cost_per_mtok",
        "assumptions",
        "realistic",
    ):
        assert key in data
    assert abs(data["gpus"] - 141_500) / 141_500 < D("0.001")
    assert data["realistic"]["gpus"] > 3 * data["gpus"]
    assert any("optimistic" in n for n in data["notes"])
    table = cli("plan", "--scenario", "agents-1b")
    assert "141,504" in table.output and "@ 30%" in table.output


def test_plan_throughput_route(cli: Invoke) -> None:
    data = ok_json(
        cli(
            "plan",
            "--agents",
            "10,000",
            "--tasks-per-day",
            "20",
            "--tokens-per-task",
            "moderate",
            "--gpu",
            "h100-sxm",
            "--throughput",
            "2500",
            "--utilization",
            "0.6",
            "-f",
            "json",
        )
    )
    assert (data["gpus"], data["servers"]) == (160, 20)
    flops = ok_json(
        cli(
            "plan",
            "--agents",
            "1e6",
            "--tokens-per-s-per-agent",
            "2",
            "--active-params",
            "37e9",
            "--gpu",
            "b200",
            "--precision",
            "fp8",
            "--utilization",
            "0.25",
            "--gpus-per-server",
            "72",
            "-f",
            "json",
        )
    )
    assert (flops["gpus"], flops["route"]) == (144, "flops")


def test_breakeven_cli(cli: Invoke) -> None:
    data = ok_json(
        cli(
            "breakeven",
            "--api-price",
            "2",
            "--capex",
            "36000",
            "--life-years",
            "3",
            "--cost-of-capital",
            "0",
            "--power-kw",
            "1",
            "--pue",
            "1.5",
            "--electricity",
            "0.10",
            "--ops-per-year",
            "1200",
            "--throughput",
            "1000",
            "--input-cost-ratio",
            "1",
            "--demand-mtok",
            "1000",
            "-f",
            "json",
        )
    )
    for key in (
        "fixed_cost_per_month",
        "local_cost_per_mtok",
        "breakeven_mtok_per_month",
        "breakeven_utilization",
        "payback_months",
    ):
        assert key in data
    assert data["fixed_cost_per_month"] == D("1209.5")
    assert data["breakeven_mtok_per_month"] == D("604.75")
    assert round(data["payback_months"], 4) == D("20.1061")
    model = ok_json(
        cli(
            "breakeven",
            "--api-model",
            "openai/gpt-4o",
            "--input-share",
            "0.5",
            "--gpu",
            "rtx-4090-ws",
            "--throughput",
            "800",
            "-f",
            "json",
        )
    )
    assert model["api_price_per_mtok"] == D("6.25")


def test_breakeven_from_ledger(cli: Invoke, ledger: Callable[[list[Any]], str]) -> None:
    # recent 30 days: research used 9 Mtok in + 1 Mtok out per day; ops is filtered out
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    events = [
        event(
            today - timedelta(days=d),
            input_tokens=9_000_000,
            output_tokens=1_000_000,
            cost_nanos=0,
            n=d,
        )
        for d in range(1, 29)
    ]
    events += [
        event(
            today - timedelta(days=2), input_tokens=10**9, output_tokens=0, cost_nanos=0, team="ops"
        )
    ]
    url = ledger(events)
    data = ok_json(
        cli(
            "breakeven",
            "--api-price",
            "3",
            "--gpu",
            "dgx-spark",
            "--throughput",
            "300",
            "--from-ledger",
            "--team",
            "research",
            "--db",
            url,
            "-f",
            "json",
        )
    )
    # 28 days x 10 Mtok = 280 Mtok in the 30-day window -> x 730 / 720 per month
    assert round(data["demand_mtok_per_month"], 6) == round(D(280) * 730 / 720, 6)
    shares = {a["name"]: a["value"] for a in data["assumptions"]}
    assert shares["input_share"] == D("0.9")


def test_forecast_cli_with_budgets_and_plot(
    cli: Invoke, ledger: Callable[[list[Any]], str], tmp_path: Path
) -> None:
    url = ledger(
        growth_events(60, start_tokens=1e6, daily_growth=0.03, noise=0.05)
        + growth_events(60, start_tokens=1e6, daily_growth=0.0, noise=0.05, team="ops", seed=3)
    )
    store = open_database(url)
    try:
        # research spends ~$12/day and growing: $100 for the month runs out within days
        set_budget(
            store,
            kind="budget",
            scope="team:research",
            unit="usd",
            limit=100 * 10**9,
            period="month",
            hard=False,
        )
        set_budget(
            store,
            kind="budget",
            scope="team:ops",
            unit="tokens",
            limit=10**12,
            period="month",
            hard=False,
        )
        set_budget(
            store,
            kind="budget",
            scope="team:ops",
            unit="requests",
            limit=10,
            period="month",
            hard=False,
        )
    finally:
        store.close()
    chart = tmp_path / "forecast.svg"
    data = ok_json(
        cli(
            "forecast",
            "--db",
            url,
            "--by",
            "team",
            "--history",
            "60",
            "--horizon",
            "14",
            "--as-of",
            TODAY.isoformat(),
            "--plot",
            str(chart),
            "-f",
            "json",
        )
    )
    assert chart.exists() and b"<svg" in chart.read_bytes()[:2000]
    growth = {(f["team"], f["metric"]): f["daily_growth"] for f in data["forecasts"]}
    assert abs(growth["research", "tokens"] - D("0.03")) < D("0.003")
    assert abs(growth["ops", "tokens"]) < D("0.003")
    flags = {(b["budget"], b["unit"]): b for b in data["budgets"]}
    research = flags["team:research", "usd"]
    assert research["runs_out"] is True
    assert research["exhausted_on"] < "2026-11-30"
    assert flags["team:ops", "tokens"]["runs_out"] is False
    assert any("requests" in n for n in data["notes"])
    table = cli("forecast", "--db", url, "--by", "team", "--as-of", TODAY.isoformat())
    assert table.exit_code == 0, table.output
    assert "Budgets" in table.output and "Assumptions" in table.output


def test_forecast_empty_ledger_notes(cli: Invoke, ledger: Callable[[list[Any]], str]) -> None:
    url = ledger([])
    data = ok_json(cli("forecast", "--db", url, "-f", "json"))
    assert data["forecasts"] == [] and data["budgets"] == []
