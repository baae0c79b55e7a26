"""``tokenomy prices``: what each place that can run a model charges, side by side."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Annotated, Any

import typer

from tokenomy import clock
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render, to_json
from tokenomy.config import load_config
from tokenomy.economics import factory_token_prices
from tokenomy.errors import ConfigError
from tokenomy.pricing import PriceBook
from tokenomy.pricing.compare import RATE_COLUMNS, compare


def register(app: typer.Typer) -> None:
    app.command()(prices)


def prices(
    config: Annotated[
        str,
        typer.Option("--config", "-c", envvar="TOKENOMY_CONFIG", help="TOML configuration file."),
    ],
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model names from the config, or catalog ids. Default: all configured."
        ),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Only this provider (config name or catalog id).")
    ] = None,
    currency: Annotated[
        str, typer.Option(help="USD, or a currency with a rate in the config's [currency].")
    ] = "USD",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Compare input, output and cache prices (per million tokens) of the configured
    deployments, the catalog's equivalents at other providers and the local factory cost.

    Example: tokenomy prices deepseek-chat gpt-4o --currency CNY
    """
    try:
        settings = load_config(config)
        book = PriceBook.from_settings(settings, factory_token_prices(settings.factories))
        rates = settings.currency
        code = currency.upper()
        rates.rate(code)  # an unknown currency fails before any work
        rows = compare(settings, book, clock.now_ms(), models or (), provider)
    except (ValueError, ConfigError) as exc:
        raise fail(str(exc)) from exc

    def money(value: Decimal | None) -> Decimal | None:
        return None if value is None else rates.convert(value, code)

    out: list[dict[str, Any]] = []
    for r in rows:
        out.append(
            {
                "model": r.model,
                "origin": r.origin,
                "provider": r.provider,
                "upstream_model": r.upstream_model,
                "location": r.location,
                **{f"{c}_per_mtok": money(r.rates[c]) for c in RATE_COLUMNS},
                "per_request": money(r.per_request),
                "price_source": r.price_source,
                "problem": r.problem,
            }
        )
    note = rates.label(code)
    if fmt is OutputFormat.json:
        document: dict[str, Any] = {"currency": code, "note": note, "prices": out}
        if code != "USD":
            document["rate_per_usd"] = rates.rate(code)
            document["rate_date"] = rates.date.isoformat() if rates.date else None
        sys.stdout.write(to_json(document) + "\n")
        return
    render(out, fmt, title=f"Prices per million tokens ({code})")
    if fmt is OutputFormat.table:
        console.print(note)
