"""``tokenomy factory | plan | breakeven | forecast``: the economics commands.

Each command parses flags, calls ``tokenomy.economics`` and prints the result with every
assumption behind it: a Rich table for people, ``--format json`` (or csv) for programs.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from tokenomy.cli._common import (
    DbOption,
    FormatOption,
    OutputFormat,
    console,
    fail,
    render,
    to_json,
)
from tokenomy.economics import (
    SCENARIOS,
    ApiPrice,
    Demand,
    FactoryProfile,
    breakeven,
    budget_from_record,
    build_profile,
    catalog_api_price,
    demand_from_rows,
    factory_cost,
    forecast,
    forecast_series,
    load_catalog,
    plan_flops,
    plan_scenario,
    plan_throughput,
    project_budget,
)
from tokenomy.economics._num import human, out, parse_decimal
from tokenomy.economics.forecast import daily_series
from tokenomy.economics.plan import peak_flops_of, tokens_per_task
from tokenomy.economics.profiles import NUMERIC_FIELDS
from tokenomy.errors import ConfigError, LedgerError


def register(app: typer.Typer) -> None:
    """Add ``factory``, ``plan``, ``breakeven`` and ``forecast`` to the main app."""
    app.command("factory")(factory)
    app.command("plan")(plan)
    app.command("breakeven")(breakeven_cmd)
    app.command("forecast")(forecast_cmd)


# -- shared options ------------------------------------------------------------------------
def _dec_opt(flag: str, field: str, extra: str = "") -> Any:
    return typer.Option(flag, parser=parse_decimal, show_default=False,
                        help=f"{NUMERIC_FIELDS[field].description.capitalize()}{extra}.")


ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", envvar="TOKENOMY_CONFIG", help="TOML config with [factories.NAME] tables.")]
FactoryOpt = Annotated[str | None, typer.Option(
    "--factory", help="Use the config's [factories.NAME] profile (needs --config).")]
GpuOpt = Annotated[str | None, typer.Option(
    "--gpu", help="Catalog GPU/box: h100-sxm, h200, b200, gb200, mi300x, mi325x, mi355x, "
                  "rtx-4090-ws, dgx-spark, cpu-box (see `tokenomy factory --list`).")]
CapexOpt = Annotated[Decimal | None, _dec_opt("--capex", "capex")]
RentOpt = Annotated[Decimal | None, _dec_opt("--rent-per-hour", "rent_per_hour")]
RentPowerOpt = Annotated[bool | None, typer.Option(
    "--rent-includes-power/--rent-excludes-power", show_default=False,
    help="Whether --rent-per-hour already pays the electricity [default: includes].")]
LifeOpt = Annotated[Decimal | None, _dec_opt("--life-years", "life_years")]
CocOpt = Annotated[Decimal | None, _dec_opt("--cost-of-capital", "cost_of_capital")]
PowerOpt = Annotated[Decimal | None, _dec_opt("--power-kw", "power_kw")]
DrawOpt = Annotated[Decimal | None, _dec_opt("--avg-draw", "avg_draw")]
PueOpt = Annotated[Decimal | None, _dec_opt("--pue", "pue")]
ElecOpt = Annotated[Decimal | None, _dec_opt("--electricity", "electricity")]
OpsOpt = Annotated[Decimal | None, _dec_opt("--ops-per-year", "ops_per_year")]
ThroughputOpt = Annotated[Decimal | None, _dec_opt("--throughput", "throughput")]
UtilOpt = Annotated[Decimal | None, _dec_opt("--utilization", "utilization")]
GpusOpt = Annotated[int | None, typer.Option(
    "--gpus", min=1, show_default=False, help="Number of GPUs (a whole box is 1) [default: 1].")]
RatioOpt = Annotated[Decimal | None, _dec_opt("--input-cost-ratio", "input_cost_ratio")]


def _profile(*, config: str | None, factory_name: str | None, gpu: str | None,
             flags: dict[str, Any], require_throughput: bool = False,
             default_gpu: str | None = None) -> FactoryProfile:
    """Config factory (if any), then catalog GPU, then flags; errors exit with a message."""
    layers: list[tuple[dict[str, Any], str]] = []
    name = factory_name or gpu or default_gpu or "custom"
    try:
        if factory_name:
            if not config:
                raise ValueError("--factory needs --config (or TOKENOMY_CONFIG)")
            from tokenomy.config import load_config

            settings = load_config(config)
            if factory_name not in settings.factories:
                known = ", ".join(sorted(settings.factories)) or "none"
                raise ValueError(f"no [factories.{factory_name}] in {config} (known: {known})")
            layers.append((dict(settings.factories[factory_name]),
                           f"config [factories.{factory_name}] {{key}}"))
        elif gpu is None and default_gpu is not None:
            layers.append(({"gpu": default_gpu}, "default {key}"))
        given = {k: v for k, v in flags.items() if v is not None}
        if gpu is not None:
            given["gpu"] = gpu
        layers.append((given, "flag {flag}"))
        return build_profile(name, layers, require_throughput=require_throughput)
    except (ValueError, ConfigError) as exc:
        raise fail(str(exc)) from exc


def _emit(fmt: OutputFormat, data: dict[str, Any], metrics: list[dict[str, Any]], *,
          title: str, assumptions: list[dict[str, Any]], notes: list[str]) -> None:
    """JSON: the full result. CSV: the metric rows. Table: metrics, assumptions, notes."""
    if fmt is OutputFormat.json:
        typer.echo(to_json(data))
        return
    if fmt is OutputFormat.csv:
        render(metrics, fmt, columns=["metric", "value", "unit"])
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for row in metrics:
        table.add_row(row["metric"], _fmt(row["value"]), row["unit"])
    console.print(table)
    _print_assumptions(assumptions)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def _print_assumptions(assumptions: list[dict[str, Any]]) -> None:
    table = Table(title="Assumptions", title_justify="left")
    for col in ("name", "value", "unit", "source"):
        table.add_column(col, justify="right" if col == "value" else "left",
                         overflow="fold")
    for a in assumptions:
        table.add_row(str(a["name"]), _fmt(a["value"]), str(a.get("unit", "")),
                      str(a.get("source", "")))
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int) or value is None:
        return human(value)
    return str(value)


def _metric(name: str, value: Any, unit: str) -> dict[str, Any]:
    return {"metric": name, "value": value, "unit": unit}


# -- factory -------------------------------------------------------------------------------
def factory(
    gpu: GpuOpt = None,
    capex: CapexOpt = None,
    rent_per_hour: RentOpt = None,
    rent_includes_power: RentPowerOpt = None,
    life_years: LifeOpt = None,
    cost_of_capital: CocOpt = None,
    power_kw: PowerOpt = None,
    avg_draw: DrawOpt = None,
    pue: PueOpt = None,
    electricity: ElecOpt = None,
    ops_per_year: OpsOpt = None,
    throughput: ThroughputOpt = None,
    utilization: UtilOpt = None,
    gpus: GpusOpt = None,
    input_cost_ratio: RatioOpt = None,
    factory_name: FactoryOpt = None,
    config: ConfigOpt = None,
    list_catalog: Annotated[bool, typer.Option("--list", help="List the GPU/box catalog.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """What a token costs to make: $/hour (chips, electricity, ops), $/Mtok, tokens/s per MW.

    Example: tokenomy factory --gpu h100-sxm --throughput 1000 --electricity 0.06
    Example: tokenomy factory --rent-per-hour 1.30 --throughput 1000 --format json
    """
    if list_catalog:
        _list_catalog(fmt)
        return
    flags = {"capex": capex, "rent_per_hour": rent_per_hour,
             "rent_includes_power": rent_includes_power, "life_years": life_years,
             "cost_of_capital": cost_of_capital, "power_kw": power_kw, "avg_draw": avg_draw,
             "pue": pue, "electricity": electricity, "ops_per_year": ops_per_year,
             "throughput": throughput, "utilization": utilization, "gpus": gpus,
             "input_cost_ratio": input_cost_ratio}
    profile = _profile(config=config, factory_name=factory_name, gpu=gpu, flags=flags)
    cost = factory_cost(profile)
    data = cost.to_dict()
    notes = [] if profile.throughput is not None else [
        "give --throughput (tokens/s per GPU) for per-token and energy-per-token figures"]
    metrics = [
        _metric("cost_per_hour", data["cost_per_hour"], f"USD/h ({profile.gpus} GPU)"),
        _metric("  capex_per_hour (chips)", data["capex_per_hour"],
                "USD/h (rent)" if profile.rent_per_hour is not None else "USD/h"),
        _metric("  electricity_per_hour", data["electricity_per_hour"], "USD/h"),
        _metric("  ops_per_hour", data["ops_per_hour"], "USD/h"),
        _metric("cost_per_mtok", data["cost_per_mtok"], "USD per million tokens"),
        _metric("  input_cost_per_mtok", data["input_cost_per_mtok"], "USD/Mtok (prefill)"),
        _metric("  output_cost_per_mtok", data["output_cost_per_mtok"], "USD/Mtok (decode)"),
        _metric("tokens_per_s_per_mw", data["tokens_per_s_per_mw"], "tokens/s per all-in MW"),
        _metric("joules_per_token", data["joules_per_token"], "J/token (all-in)"),
        _metric("kwh_per_mtok", data["kwh_per_mtok"], "kWh per million tokens"),
        _metric("electricity_share_total", data["electricity_share_total"],
                "of total cost (hardware included)"),
        _metric("electricity_share_opex", data["electricity_share_opex"],
                "of operating cost (hardware excluded)"),
    ]
    if profile.reference_tco_per_hour is not None:
        metrics.append(_metric("reference_tco_per_gpu_hour", data["reference_tco_per_gpu_hour"],
                               "USD/GPU-h, InferenceX hyperscaler TCO (for comparison)"))
    _emit(fmt, data, metrics, title=f"Token factory: {profile.label}",
          assumptions=data["assumptions"], notes=notes)


def _list_catalog(fmt: OutputFormat) -> None:
    cat = load_catalog()
    rows = []
    for spec in cat.gpus.values():
        rows.append({
            "gpu": spec.name, "label": spec.label, "kind": spec.kind,
            "capex": spec.values.get("capex"), "power_kw": spec.values.get("power_kw"),
            "all_in_kw": out(spec.values["power_kw"] * spec.values.get("pue", cat.defaults["pue"]),
                             6),
            "bf16_tflops": out(spec.peak_flops["bf16"] / 10**12) if "bf16" in spec.peak_flops
            else None,
            "fp8_tflops": out(spec.peak_flops["fp8"] / 10**12) if "fp8" in spec.peak_flops
            else None,
            "reference_tco_per_hour": spec.reference_tco_per_hour,
        })
    render(rows, fmt, title="GPU/box catalog (sources: docs/economics.md, gpus.toml)")


# -- plan ----------------------------------------------------------------------------------
def plan(
    scenario: Annotated[str | None, typer.Option(
        help=f"Preset demand: {', '.join(SCENARIOS)}.")] = None,
    agents: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False, help="Daily active agents (e.g. 1e6).")] = None,
    tasks_per_day: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False, help="Tasks per agent per day.")] = None,
    tokens_per_task_: Annotated[str | None, typer.Option(
        "--tokens-per-task", help="Tokens per task, or chat (2,000), moderate (100,000), "
        "complex (1,000,000), itinerary (930,000).")] = None,
    peak_factor: Annotated[Decimal, typer.Option(
        parser=parse_decimal, help="Busiest hour / average hour.")] = Decimal(1),
    tokens_per_s_per_agent: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="FLOPs route: tokens/s each agent consumes.")] = None,
    active_params: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="FLOPs route: active parameters per token (e.g. 70e9).")] = None,
    precision: Annotated[str, typer.Option(
        help="FLOPs route: peak FLOP/s at bf16, fp8 or fp4.")] = "bf16",
    peak_tflops: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="FLOPs route: dense peak TFLOP/s per GPU [default: from --gpu].")] = None,
    gpus_per_server: Annotated[int, typer.Option(min=1, help="GPUs per server.")] = 8,
    gpu: GpuOpt = None,
    capex: CapexOpt = None,
    rent_per_hour: RentOpt = None,
    life_years: LifeOpt = None,
    cost_of_capital: CocOpt = None,
    power_kw: PowerOpt = None,
    avg_draw: DrawOpt = None,
    pue: PueOpt = None,
    electricity: ElecOpt = None,
    ops_per_year: OpsOpt = None,
    throughput: ThroughputOpt = None,
    utilization: UtilOpt = None,
    factory_name: FactoryOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Capacity from demand: GPUs (whole servers), MW, MWh/day, $/day, effective $/Mtok.

    Example: tokenomy plan --agents 10000 --tasks-per-day 20 --tokens-per-task moderate --gpu h100-sxm --throughput 2500 --utilization 0.6
    Example: tokenomy plan --scenario agents-1b
    Example: tokenomy plan --agents 1e6 --tokens-per-s-per-agent 2 --active-params 37e9 --gpu b200 --precision fp8 --utilization 0.3
    """  # noqa: E501
    flags = {"capex": capex, "rent_per_hour": rent_per_hour, "life_years": life_years,
             "cost_of_capital": cost_of_capital, "power_kw": power_kw, "avg_draw": avg_draw,
             "pue": pue, "electricity": electricity, "ops_per_year": ops_per_year,
             "throughput": throughput, "utilization": utilization}
    try:
        if scenario is not None:
            sc = SCENARIOS.get(scenario)
            if sc is None:
                raise ValueError(f"scenario: unknown {scenario!r} (known: {', '.join(SCENARIOS)})")
            profile = _profile(config=config, factory_name=factory_name, gpu=gpu, flags=flags,
                               default_gpu=sc.gpu)
            stated, realistic = plan_scenario(sc, profile, gpus_per_server)
            data = {"scenario": sc.name, **stated.to_dict(), "realistic": realistic.to_dict()}
            _emit_plan(fmt, data, stated, realistic)
            return
        profile = _profile(config=config, factory_name=factory_name, gpu=gpu, flags=flags)
        if tokens_per_s_per_agent is not None or active_params is not None:
            if agents is None or tokens_per_s_per_agent is None or active_params is None:
                raise ValueError("FLOPs route needs --agents, --tokens-per-s-per-agent and "
                                 "--active-params")
            peak = (peak_tflops * 10**12 if peak_tflops is not None
                    else peak_flops_of(profile, precision))
            result = plan_flops(profile, agents=agents,
                                tokens_per_s_per_agent=tokens_per_s_per_agent,
                                active_params=active_params, peak_flops=peak,
                                precision=precision, gpus_per_server=gpus_per_server)
        else:
            if agents is None or tasks_per_day is None or tokens_per_task_ is None:
                raise ValueError("throughput route needs --agents, --tasks-per-day and "
                                 "--tokens-per-task (or use --scenario, or the FLOPs route)")
            result = plan_throughput(profile, agents=agents, tasks_per_day=tasks_per_day,
                                     tokens_per_task=tokens_per_task(tokens_per_task_),
                                     peak_factor=peak_factor, gpus_per_server=gpus_per_server)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    _emit_plan(fmt, result.to_dict(), result, None)


def _plan_metrics(r: Any, suffix: str = "") -> list[dict[str, Any]]:
    return [
        _metric(f"gpus{suffix}", r.gpus, f"{r.profile.label} ({human(r.gpus_exact)} exact)"),
        _metric(f"servers{suffix}", r.servers, f"x {r.gpus_per_server} GPUs"),
        _metric(f"mw_it{suffix}", r.mw_it, "MW IT load"),
        _metric(f"mw_facility{suffix}", r.mw_facility,
                f"MW at the meter (PUE {human(r.profile.pue, 4)})"),
        _metric(f"mwh_per_day{suffix}", r.mwh_per_day, "MWh/day"),
        _metric(f"cost_per_day{suffix}", r.cost_per_day, "USD/day"),
        _metric(f"cost_per_year{suffix}", r.cost_per_year, "USD/year"),
        _metric(f"cost_per_mtok{suffix}", r.cost_per_mtok, "USD per million tokens (effective)"),
    ]


def _emit_plan(fmt: OutputFormat, data: dict[str, Any], result: Any, realistic: Any) -> None:
    metrics = [
        _metric("tokens_per_day", result.tokens_per_day, "tokens/day"),
        _metric("peak_tokens_per_s", result.peak_tokens_per_s, "tokens/s to serve"),
        *_plan_metrics(result),
    ]
    notes = list(result.notes)
    if realistic is not None:
        metrics += _plan_metrics(realistic, f" @ {human(realistic.profile.utilization * 100)}%")
        notes += realistic.notes
    assumptions = data["assumptions"]
    _emit(fmt, data, metrics, title=f"Capacity plan ({result.route} route)",
          assumptions=assumptions, notes=notes)


# -- breakeven -----------------------------------------------------------------------------
def breakeven_cmd(
    api_model: Annotated[str | None, typer.Option(
        help="Cloud model priced from genai-prices, e.g. openai/gpt-4o.")] = None,
    api_price: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="Or a blended cloud price, USD per million tokens.")] = None,
    input_share: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="Share of input tokens [default: the ledger's mix, else 0.5].")] = None,
    demand_mtok: Annotated[Decimal | None, typer.Option(
        parser=parse_decimal, show_default=False,
        help="Monthly demand, millions of tokens (for savings and payback).")] = None,
    from_ledger: Annotated[bool, typer.Option(
        "--from-ledger", help="Take demand and mix from the ledger's last --days days.")] = False,
    team: Annotated[str | None, typer.Option(help="Ledger filter: team.")] = None,
    model: Annotated[str | None, typer.Option(help="Ledger filter: model asked for.")] = None,
    org: Annotated[str | None, typer.Option(help="Ledger filter: org.")] = None,
    days: Annotated[int, typer.Option(min=1, help="Ledger window, days.")] = 30,
    gpu: GpuOpt = None,
    capex: CapexOpt = None,
    rent_per_hour: RentOpt = None,
    rent_includes_power: RentPowerOpt = None,
    life_years: LifeOpt = None,
    cost_of_capital: CocOpt = None,
    power_kw: PowerOpt = None,
    avg_draw: DrawOpt = None,
    pue: PueOpt = None,
    electricity: ElecOpt = None,
    ops_per_year: OpsOpt = None,
    throughput: ThroughputOpt = None,
    utilization: UtilOpt = None,
    gpus: GpusOpt = None,
    input_cost_ratio: RatioOpt = None,
    factory_name: FactoryOpt = None,
    config: ConfigOpt = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cloud API or local box: monthly fixed cost, break-even volume and payback.

    Example: tokenomy breakeven --api-model openai/gpt-4o --gpu rtx-4090-ws --throughput 800 --demand-mtok 500
    Example: tokenomy breakeven --api-price 3 --gpu dgx-spark --throughput 300 --from-ledger --team research
    """  # noqa: E501
    flags = {"capex": capex, "rent_per_hour": rent_per_hour,
             "rent_includes_power": rent_includes_power, "life_years": life_years,
             "cost_of_capital": cost_of_capital, "power_kw": power_kw, "avg_draw": avg_draw,
             "pue": pue, "electricity": electricity, "ops_per_year": ops_per_year,
             "throughput": throughput, "utilization": utilization, "gpus": gpus,
             "input_cost_ratio": input_cost_ratio}
    profile = _profile(config=config, factory_name=factory_name, gpu=gpu, flags=flags,
                       require_throughput=True)
    try:
        demand: Demand | None = None
        if from_ledger and demand_mtok is not None:
            raise ValueError("give --demand-mtok or --from-ledger, not both")
        if from_ledger:
            filters = {k: v for k, v in (("team", team), ("model", model), ("org", org)) if v}
            demand = _ledger_demand(db, filters, days)
        elif demand_mtok is not None:
            share = input_share if input_share is not None else profile.throughput_input_share
            demand = Demand(demand_mtok, share, "flag --demand-mtok")
        share = input_share if input_share is not None else (
            demand.input_share if demand else profile.throughput_input_share)
        if api_model is not None and api_price is None:
            api = catalog_api_price(api_model, share)
        elif api_price is not None and api_model is None:
            api = ApiPrice(api_price, None, None, share, "flag --api-price (blended)")
        else:
            raise ValueError("give one of --api-model MODEL or --api-price USD_PER_MTOK")
        result = breakeven(profile, api, demand, share)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    data = result.to_dict()
    metrics = [
        _metric("api_price_per_mtok", data["api_price_per_mtok"],
                f"USD/Mtok blended at {human(share * 100)}% input"),
        _metric("fixed_cost_per_month", data["fixed_cost_per_month"],
                f"USD/month, {profile.gpus} x {profile.label}"),
        _metric("capacity_mtok_per_month", data["capacity_mtok_per_month"], "Mtok/month at 100%"),
        _metric("local_cost_per_mtok", data["local_cost_per_mtok"],
                f"USD/Mtok at {human(profile.utilization * 100)}% utilization"),
        _metric("breakeven_mtok_per_month", data["breakeven_mtok_per_month"], "Mtok/month"),
        _metric("breakeven_utilization", data["breakeven_utilization"], "of capacity"),
    ]
    if demand is not None:
        metrics += [
            _metric("demand_mtok_per_month", data["demand_mtok_per_month"], demand.source),
            _metric("demand_utilization", data["demand_utilization"], "of capacity"),
            _metric("cloud_cost_per_month", data["cloud_cost_per_month"], "USD/month"),
            _metric("local_cost_per_month", data["local_cost_per_month"],
                    "USD/month (box + overflow to cloud)"),
            _metric("savings_per_month", data["savings_per_month"], "USD/month"),
            _metric("upfront_capex", data["upfront_capex"], "USD"),
            _metric("payback_months", data["payback_months"], "months"),
        ]
    _emit(fmt, data, metrics, title="Break-even: cloud API vs local",
          assumptions=data["assumptions"], notes=data["notes"])


def _ledger_demand(db: str | None, filters: dict[str, str], days: int) -> Demand:
    from tokenomy.config import resolve_db_url
    from tokenomy.ledger import open_store

    now_ms = int(time.time() * 1000)
    store = open_store(resolve_db_url(db))
    try:
        rows = store.aggregate(now_ms - days * 86_400_000, None, [], filters or None)
    finally:
        store.close()
    label = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
    demand = demand_from_rows(rows, days, f"ledger: last {days} days ({label})")
    if demand.mtok_per_month == 0:
        raise ValueError(f"the ledger has no tokens in the last {days} days for {label}")
    return demand


# -- forecast ------------------------------------------------------------------------------
def forecast_cmd(
    by: Annotated[str | None, typer.Option(
        help="Forecast per group: comma list of org, team, user, agent, model, provider.")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="Filter FIELD=VALUE (repeatable), e.g. --where team=research.")] = None,
    history: Annotated[int, typer.Option(min=3, help="Days of history to fit.")] = 90,
    horizon: Annotated[int, typer.Option(min=1, help="Days to project.")] = 30,
    level: Annotated[float, typer.Option(help="Prediction interval level.")] = 0.95,
    fit: Annotated[str, typer.Option(help="Trend: exp (growth rate) or linear.")] = "exp",
    metric: Annotated[str, typer.Option(help="tokens, cost or both.")] = "both",
    as_of: Annotated[str | None, typer.Option(
        help="Forecast as of this UTC day (history ends the day before) [default: today].")
    ] = None,
    plot_file: Annotated[str | None, typer.Option(
        "--plot", help="Also write a chart: FILE.png or FILE.svg.")] = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit the growth of daily tokens and cost, project it, flag budgets that will run out.

    Example: tokenomy forecast --by team --horizon 30 --plot forecast.png
    Example: tokenomy forecast --where model=gpt-4o --fit linear --format json
    """
    try:
        if fit not in ("exp", "linear"):
            raise ValueError(f"--fit: exp or linear, got {fit!r}")
        metrics = {"both": ("tokens", "cost"), "tokens": ("tokens",), "cost": ("cost",)}.get(metric)
        if metrics is None:
            raise ValueError(f"--metric: tokens, cost or both, got {metric!r}")
        today = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
        fields = [f.strip() for f in (by or "").split(",") if f.strip()]
        filters = _parse_where(where)
        end, start = today - timedelta(days=1), today - timedelta(days=history)
        store = _open(db)
        try:
            rows = store.aggregate(_ms(start), _ms(today), [*fields, "day"], filters or None)
            forecasts, notes = forecast(rows, fields, start, end, horizon, level=level,
                                        model=fit, metrics=metrics)  # type: ignore[arg-type]
            flags, budget_notes = _budget_flags(store, today, history, level, fit)
        finally:
            store.close()
        notes += budget_notes
        if plot_file:
            from tokenomy.economics.plot import plot_forecasts

            notes.append(f"chart written to {plot_forecasts(forecasts, plot_file)}")
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    assumptions: list[dict[str, Any]] = [
        {"name": "history", "value": f"{start.isoformat()} .. {end.isoformat()}",
         "unit": "UTC days", "source": "--history (full days only; today is partial)"},
        {"name": "fit", "value": fit, "unit": "", "source": "--fit: OLS on ln(daily) or daily"},
        {"name": "level", "value": level, "unit": "", "source": "Student-t prediction interval"},
        {"name": "horizon", "value": horizon, "unit": "days", "source": "--horizon"},
        {"name": "filters", "value": ", ".join(f"{k}={v}" for k, v in filters.items()) or "none",
         "unit": "", "source": "--where"},
    ]
    if fmt is OutputFormat.json:
        typer.echo(to_json({"forecasts": [fc.to_dict() for fc in forecasts],
                            "budgets": [f.to_dict() for f in flags],
                            "assumptions": assumptions, "notes": notes}))
        return
    if fmt is OutputFormat.csv:
        render([_forecast_csv_row(fc, fields) for fc in forecasts], fmt)
        return
    title = f"Forecast: day {horizon} ahead and {horizon}-day total ({level:.0%} interval)"
    render([_forecast_table_row(fc, fields, horizon) for fc in forecasts], fmt, title=title,
           columns=[*fields, "metric", "growth", "doubling", "yesterday", f"day +{horizon}",
                    "interval", "total"])
    if flags:
        render([_budget_table_row(f) for f in flags], fmt, title="Budgets",
               columns=["budget", "limit", "spent", "period_end", "projected", "high",
                        "runs_out_on"])
    _print_assumptions(assumptions)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def _short(value: Decimal | None, unit: str) -> str:
    """Compact people's number: $12.35, 6.12M tokens."""
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${human(value, 4)}"
    for scale, suffix in ((D_E12, "T"), (D_E9, "G"), (D_E6, "M"), (D_E3, "k")):
        if abs(value) >= scale:
            return f"{human(value / scale, 3)}{suffix}"
    return human(value, 3)


D_E3, D_E6, D_E9, D_E12 = (Decimal(10) ** k for k in (3, 6, 9, 12))


def _forecast_table_row(fc: Any, fields: list[str], horizon: int) -> dict[str, Any]:
    d = fc.to_dict()
    unit = fc.unit
    growth = (f"{d['daily_growth'] * 100:+.2f}%/d" if d["model"] == "exp"
              else f"{_short(d['daily_growth'], unit)}/d")
    return {**{f: d.get(f, "") for f in fields}, "metric": unit, "growth": growth,
            "doubling": f"{d['doubling_days']} d" if d["doubling_days"] is not None else "-",
            "yesterday": _short(d["last_day_actual"], unit),
            f"day +{horizon}": _short(d["horizon_end_point"], unit),
            "interval": f"{_short(d['horizon_end_low'], unit)}-"
                        f"{_short(d['horizon_end_high'], unit)}",
            "total": _short(d["horizon_total"], unit)}


def _forecast_csv_row(fc: Any, fields: list[str]) -> dict[str, Any]:
    d = fc.to_dict()
    keep = ("metric", "unit", "model", "daily_growth", "doubling_days", "last_day_actual",
            "horizon_end", "horizon_end_point", "horizon_end_low", "horizon_end_high",
            "horizon_total", "horizon_total_low", "horizon_total_high")
    return {**{f: d.get(f, "") for f in fields}, **{k: d[k] for k in keep}}


def _budget_table_row(flag: Any) -> dict[str, Any]:
    d = flag.to_dict()
    unit = d["unit"]
    return {"budget": f"{d['budget']} ({unit})", "limit": _short(d["limit"], unit),
            "spent": _short(d["spent"], unit), "period_end": d["period_end"],
            "projected": _short(d["projected_total"], unit),
            "high": _short(d["projected_high"], unit),
            "runs_out_on": d["exhausted_on"] or ("maybe" if d["may_run_out"] else "no")}


def _budget_flags(store: Any, today: date, history: int, level: float, fit: str
                  ) -> tuple[list[Any], list[str]]:
    """Budgets from the budgets room (or ``store.list_budgets()``); each forecast on its own
    scope and unit, then projected to the end of its period."""
    records = _budget_records(store, today)
    if records is None:
        return [], ["budgets: this ledger has no budgets; exhaustion flags skipped"]
    flags: list[Any] = []
    notes: list[str] = []
    start, end = today - timedelta(days=history), today - timedelta(days=1)
    for record in records:
        try:
            budget = budget_from_record(record)
            if budget.period_end < today:
                continue
            rows = store.aggregate(_ms(start), _ms(today), ["day"], budget.scope or None)
            series = daily_series(rows, [], start, end)
            if not series:
                notes.append(f"budget {budget.name or budget.scope}: no usage to forecast")
                continue
            metric = "tokens" if budget.unit == "tokens" else "cost"
            fc = forecast_series(series[0], metric, 0, level, fit)  # type: ignore[arg-type]
            flags.append(project_budget(budget, fc, today))
        except (ValueError, LedgerError) as exc:
            label = record.get("scope") if isinstance(record, dict) else record
            notes.append(f"budget {label}: skipped ({exc})")
    flags.sort(key=lambda f: (not f.runs_out, not f.may_run_out, f.exhausted_on or date.max))
    return flags, notes


def _budget_records(store: Any, today: date) -> list[Any] | None:
    try:
        from tokenomy.budgets.report import budget_rows
    except ImportError:  # pragma: no cover - the budgets room is part of the package
        return list(store.list_budgets()) if hasattr(store, "list_budgets") else None
    return list(budget_rows(store, kind="budget", now_ms=_ms(today)))


def _parse_where(items: list[str] | None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--where takes FIELD=VALUE, got {item!r}")
        filters[name.strip()] = value.strip()
    return filters


def _open(db: str | None) -> Any:
    from tokenomy.config import resolve_db_url
    from tokenomy.ledger import open_store

    return open_store(resolve_db_url(db))


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
