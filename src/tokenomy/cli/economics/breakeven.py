"""``tokenomy breakeven``: cloud API or local box, and when the box pays for itself."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from tokenomy import clock
from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.economics.factory_options import FactoryFlags, with_factory_options
from tokenomy.cli.economics.output import emit, fail_on, metric, show
from tokenomy.cli.output import FormatOption, OutputFormat, console, render
from tokenomy.economics import ApiPrice, MonthlyDemand, breakeven, catalog_api_price
from tokenomy.economics.decimals import human, parse_decimal
from tokenomy.economics.workload import effective_price, ledger_demand, list_price_of_mix
from tokenomy.errors import LedgerError


def _number(help_text: str) -> Any:
    return typer.Option(parser=parse_decimal, show_default=False, help=help_text)


@with_factory_options()
def breakeven_cmd(
    factory: FactoryFlags,
    api_model: Annotated[
        str | None, typer.Option(help="Cloud model priced from genai-prices, e.g. openai/gpt-4o.")
    ] = None,
    api_price: Annotated[
        Decimal | None, _number("Or a blended cloud price, USD per million tokens.")
    ] = None,
    input_share: Annotated[
        Decimal | None, _number("Share of input tokens [default: the ledger's mix, else 0.5].")
    ] = None,
    demand_mtok: Annotated[
        Decimal | None, _number("Monthly demand, millions of tokens (for savings and payback).")
    ] = None,
    from_ledger: Annotated[
        bool,
        typer.Option(
            "--from-ledger",
            help="Demand, mix and the effective $/Mtok from the ledger's last --days days; "
            "demand projected with the forecast.",
        ),
    ] = False,
    baseline: Annotated[
        str,
        typer.Option(
            help="With --from-ledger: compare with the ledger's effective price (effective) "
            "or the list price (list: --api-model/--api-price, else the mix's list prices)."
        ),
    ] = "effective",
    project: Annotated[
        bool,
        typer.Option(
            "--project/--flat", help="With --from-ledger: forecast demand over the box's life."
        ),
    ] = True,
    discount_rate: Annotated[
        Decimal | None, _number("Annual cost of capital for the NPV [default: cost_of_capital].")
    ] = None,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity", help="Also a grid: utilization and API price at x0.5, x1, x1.5."
        ),
    ] = False,
    team: Annotated[str | None, typer.Option(help="Ledger filter: team.")] = None,
    model: Annotated[str | None, typer.Option(help="Ledger filter: model asked for.")] = None,
    org: Annotated[str | None, typer.Option(help="Ledger filter: org.")] = None,
    days: Annotated[int, typer.Option(min=1, help="Ledger window, days.")] = 30,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cloud API or local box: monthly fixed cost, break-even volume, payback and NPV.

    Example: tokenomy breakeven --api-model openai/gpt-4o --gpu rtx-4090-ws --throughput 800 --demand-mtok 500
    Example: tokenomy breakeven --gpu dgx-spark --throughput 300 --from-ledger --team research --sensitivity
    """  # noqa: E501
    profile = factory.profile(require_throughput=True)
    notes: list[str] = []
    with fail_on(ValueError, LedgerError):
        if baseline not in ("effective", "list"):
            raise ValueError(f"--baseline: effective or list, got {baseline!r}")
        if api_model is not None and api_price is not None:
            raise ValueError("give --api-model or --api-price, not both")
        demand: MonthlyDemand | None = None
        effective: ApiPrice | None = None
        mix_list: ApiPrice | None = None
        if from_ledger and demand_mtok is not None:
            raise ValueError("give --demand-mtok or --from-ledger, not both")
        if from_ledger:
            filters = {k: v for k, v in (("team", team), ("model", model), ("org", org)) if v}
            today = datetime.fromtimestamp(clock.now_ms() / 1000, UTC).date()
            months = int(profile.life_years * 12) + 1 if project else 0
            with ledger(db) as store:
                demand, found = ledger_demand(store, filters, days, today=today, months=months)
                notes += found
                effective = effective_price(demand)
                if api_model is None and api_price is None:
                    mix_list, found = list_price_of_mix(store, filters, days, today=today)
                    notes += found
        elif demand_mtok is not None:
            share = input_share if input_share is not None else profile.throughput_input_share
            demand = MonthlyDemand(demand_mtok, share, "flag --demand-mtok")
        share = (
            input_share
            if input_share is not None
            else (demand.input_share if demand else profile.throughput_input_share)
        )
        given: ApiPrice | None = None
        if api_model is not None:
            given = catalog_api_price(api_model, share)
        elif api_price is not None:
            given = ApiPrice(api_price, None, None, share, "flag --api-price (blended)")
        listed = given or mix_list
        if effective is not None and baseline == "effective":
            api, beside = effective, listed
        elif listed is not None:
            api, beside = listed, effective
            if from_ledger and baseline == "effective":
                notes.append("the ledger holds no cost for this workload: list price used")
        else:
            raise ValueError("give one of --api-model MODEL or --api-price USD_PER_MTOK")
        result = breakeven(
            profile,
            api,
            demand,
            share,
            discount_rate=discount_rate,
            list_price=beside,
            sensitivity=sensitivity,
        )
    data = result.to_dict()
    data["notes"] = [*data["notes"], *notes]
    emit(
        fmt,
        data,
        _metrics(data, result, share),
        title=f"Break-even: cloud API ({result.baseline} price) vs local",
        assumptions=data["assumptions"],
        notes=data["notes"],
    )
    if sensitivity and fmt is OutputFormat.table:
        render(
            [
                {
                    **{k: show(v) for k, v in row.items()},
                    "utilization": f"{row['utilization'] * 100:.1f}%",
                    "payback_months": show(row["payback_months"])
                    if row["payback_months"] is not None
                    else "never",
                }
                for row in data["sensitivity"]
            ],
            fmt,
            title="Sensitivity: utilization x API price",
            columns=[
                "utilization",
                "api_price_per_mtok",
                "local_cost_per_mtok",
                "savings_per_month",
                "payback_months",
                "npv",
            ],
        )
        console.print("payback and NPV at a flat demand of utilization x capacity")


def _metrics(data: dict[str, Any], result: Any, share: Decimal) -> list[dict[str, Any]]:
    p = result.profile
    baseline = "effective (ledger)" if result.baseline == "effective" else "list"
    rows = [
        metric("api_price_per_mtok", data["api_price_per_mtok"], f"USD/Mtok {baseline}"),
    ]
    if data["list_price_per_mtok"] is not None:
        other = "list" if result.baseline == "effective" else "effective (ledger)"
        rows.append(metric("list_price_per_mtok", data["list_price_per_mtok"], f"USD/Mtok {other}"))
    rows += [
        metric(
            "fixed_cost_per_month",
            data["fixed_cost_per_month"],
            f"USD/month, {p.gpus} x {p.label}",
        ),
        metric("monthly_opex", data["monthly_opex"], "USD/month cash (power, ops, rent)"),
        metric(
            "capacity_mtok_per_month",
            data["capacity_mtok_per_month"],
            f"Mtok/month at 100%, {human(share * 100)}% input",
        ),
        metric(
            "local_cost_per_mtok",
            data["local_cost_per_mtok"],
            f"USD/Mtok at {human(p.utilization * 100)}% utilization",
        ),
        metric("breakeven_mtok_per_month", data["breakeven_mtok_per_month"], "Mtok/month"),
        metric("breakeven_utilization", data["breakeven_utilization"], "of capacity"),
    ]
    demand = result.demand
    if demand is not None:
        rows += [
            metric("demand_mtok_per_month", data["demand_mtok_per_month"], demand.source),
            metric("demand_utilization", data["demand_utilization"], "of capacity"),
            metric(
                "local_cost_per_mtok_at_demand",
                data["local_cost_per_mtok_at_demand"],
                "USD/Mtok at the demand's utilization",
            ),
            metric("cloud_cost_per_month", data["cloud_cost_per_month"], f"USD/month {baseline}"),
            metric(
                "local_cost_per_month",
                data["local_cost_per_month"],
                "USD/month (box + overflow to cloud)",
            ),
            metric("savings_per_month", data["savings_per_month"], f"USD/month vs {baseline}"),
        ]
        if data["savings_per_month_at_list"] is not None and result.baseline == "effective":
            rows.append(
                metric(
                    "savings_per_month_at_list",
                    data["savings_per_month_at_list"],
                    "USD/month vs list",
                )
            )
        rows += [
            metric("upfront_capex", data["upfront_capex"], "USD"),
            metric(
                "payback_months",
                data["payback_months"],
                "months (forecast demand)" if demand.projection else "months (flat demand)",
            ),
        ]
        if demand.projection:
            rows.append(
                metric("payback_months_flat_demand", data["payback_months_flat_demand"], "months")
            )
        rows.append(
            metric(
                "npv",
                data["npv"],
                f"USD over {result.life_months} months at "
                f"{human(result.discount_rate * 100)}%/year",
            )
        )
    return rows
