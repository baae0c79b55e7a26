"""``tokenomy savings``: what the local lane and cheapest-first routing saved."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render, to_json
from tokenomy.config import Provider, Settings, load_config
from tokenomy.economics import factory_token_prices
from tokenomy.errors import ConfigError, LedgerError
from tokenomy.ledger.reports import parse_time
from tokenomy.pricing import PriceBook
from tokenomy.pricing.savings import Allowed
from tokenomy.pricing.savings import savings as savings_report


def register(app: typer.Typer) -> None:
    app.command()(savings)


def policy_check(settings: Settings) -> Allowed:
    """The config's data policy as a yes/no per (data class, provider, org, team)."""
    policy = settings.policy

    def allowed(data_class: str, provider: Provider, org: str, team: str) -> bool:
        # A call recorded without a class (before the policy existed) gets the default one.
        return policy.allows(data_class or policy.default_class, provider, org, team)

    return allowed


def savings(
    config: Annotated[
        str,
        typer.Option("--config", "-c", envvar="TOKENOMY_CONFIG", help="TOML configuration file."),
    ],
    since: Annotated[
        str | None, typer.Option(help="From: YYYY-MM-DD, ISO time, or 24h/7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="To (a bare date includes that day).")] = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """What the local lane's tokens would have cost on the cheapest allowed cloud deployment
    of the same model, against their local production cost; and what `cheapest` routing
    saved against `priority`. Every call is re-priced at its own time with its own usage.

    Example: tokenomy savings -c tokenomy.toml --since 30d --format json
    """
    try:
        settings = load_config(config)
        book = PriceBook.from_settings(settings, factory_token_prices(settings.factories))
        since_ms = parse_time(since) if since else None
        until_ms = parse_time(until, end_of_day=True) if until else None
        with ledger(db) as store:
            rows = savings_report(
                store,
                settings,
                book,
                policy_check(settings),
                since_ms=since_ms,
                until_ms=until_ms,
            )
    except (ValueError, ConfigError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    out = [r.as_dict() for r in rows]
    if fmt is OutputFormat.json:
        totals = {
            kind: sum((r.saved_usd for r in rows if r.kind == kind and r.saved_usd is not None), 0)
            for kind in ("local_lane", "cheapest_routing")
        }
        sys.stdout.write(to_json({"rows": out, "saved_usd": totals}) + "\n")
        return
    render(out, fmt, title="Savings (re-priced call by call)")
    if fmt is OutputFormat.table and not out:
        console.print("No local-lane or cheapest-routed calls in this window.")
