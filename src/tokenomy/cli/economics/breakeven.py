"""``tokenomy breakeven``: cloud API or local box, and when the box pays for itself."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Any

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.economics.factory_options import FactoryFlags, with_factory_options
from tokenomy.cli.economics.output import emit, fail_on, metric
from tokenomy.cli.output import FormatOption, OutputFormat
from tokenomy.economics import (
    ApiPrice,
    MonthlyDemand,
    breakeven,
    catalog_api_price,
    demand_from_rows,
)
from tokenomy.economics.decimals import human, parse_decimal
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
            "--from-ledger", help="Take demand and mix from the ledger's last --days days."
        ),
    ] = False,
    team: Annotated[str | None, typer.Option(help="Ledger filter: team.")] = None,
    model: Annotated[str | None, typer.Option(help="Ledger filter: model asked for.")] = None,
    org: Annotated[str | None, typer.Option(help="Ledger filter: org.")] = None,
    days: Annotated[int, typer.Option(min=1, help="Ledger window, days.")] = 30,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cloud API or local box: monthly fixed cost, break-even volume and payback.

    Example: tokenomy breakeven --api-model openai/gpt-4o --gpu rtx-4090-ws --throughput 800 --demand-mtok 500
    Example: tokenomy breakeven --api-price 3 --gpu dgx-spark --throughput 300 --from-ledger --team research
    """  # noqa: E501
    profile = factory.profile(require_throughput=True)
    with fail_on(ValueError, LedgerError):
        demand: MonthlyDemand | None = None
        if from_ledger and demand_mtok is not None:
            raise ValueError("give --demand-mtok or --from-ledger, not both")
        if from_ledger:
            filters = {k: v for k, v in (("team", team), ("model", model), ("org", org)) if v}
            demand = _ledger_demand(db, filters, days)
        elif demand_mtok is not None:
            share = input_share if input_share is not None else profile.throughput_input_share
            demand = MonthlyDemand(demand_mtok, share, "flag --demand-mtok")
        share = (
            input_share
            if input_share is not None
            else (demand.input_share if demand else profile.throughput_input_share)
        )
        if api_model is not None and api_price is None:
            api = catalog_api_price(api_model, share)
        elif api_price is not None and api_model is None:
            api = ApiPrice(api_price, None, None, share, "flag --api-price (blended)")
        else:
            raise ValueError("give one of --api-model MODEL or --api-price USD_PER_MTOK")
        result = breakeven(profile, api, demand, share)
    data = result.to_dict()
    metrics = [
        metric(
            "api_price_per_mtok",
            data["api_price_per_mtok"],
            f"USD/Mtok blended at {human(share * 100)}% input",
        ),
        metric(
            "fixed_cost_per_month",
            data["fixed_cost_per_month"],
            f"USD/month, {profile.gpus} x {profile.label}",
        ),
        metric("capacity_mtok_per_month", data["capacity_mtok_per_month"], "Mtok/month at 100%"),
        metric(
            "local_cost_per_mtok",
            data["local_cost_per_mtok"],
            f"USD/Mtok at {human(profile.utilization * 100)}% utilization",
        ),
        metric("breakeven_mtok_per_month", data["breakeven_mtok_per_month"], "Mtok/month"),
        metric("breakeven_utilization", data["breakeven_utilization"], "of capacity"),
    ]
    if demand is not None:
        metrics += [
            metric("demand_mtok_per_month", data["demand_mtok_per_month"], demand.source),
            metric("demand_utilization", data["demand_utilization"], "of capacity"),
            metric("cloud_cost_per_month", data["cloud_cost_per_month"], "USD/month"),
            metric(
                "local_cost_per_month",
                data["local_cost_per_month"],
                "USD/month (box + overflow to cloud)",
            ),
            metric("savings_per_month", data["savings_per_month"], "USD/month"),
            metric("upfront_capex", data["upfront_capex"], "USD"),
            metric("payback_months", data["payback_months"], "months"),
        ]
    emit(
        fmt,
        data,
        metrics,
        title="Break-even: cloud API vs local",
        assumptions=data["assumptions"],
        notes=data["notes"],
    )


def _ledger_demand(db: str | None, filters: dict[str, str], days: int) -> MonthlyDemand:
    now_ms = int(time.time() * 1000)
    with ledger(db) as store:
        rows = store.aggregate(now_ms - days * 86_400_000, None, [], filters or None)
    label = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
    demand = demand_from_rows(rows, days, f"ledger: last {days} days ({label})")
    if demand.mtok_per_month == 0:
        raise ValueError(f"the ledger has no tokens in the last {days} days for {label}")
    return demand
