"""``tokenomy budgets`` and ``tokenomy limits``: spending budgets and rate limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from tokenomy.budgets import storage
from tokenomy.budgets.model import (
    BUDGET,
    RATE_LIMIT,
    UNITS,
    parse_alerts,
    parse_decimal,
    parse_scope,
    to_amount,
)
from tokenomy.budgets.periods import PERIODS
from tokenomy.budgets.report import budget_rows
from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render
from tokenomy.errors import LedgerError

app = typer.Typer(
    help="Token and money budgets per org, team, user, key and agent.", no_args_is_help=True
)
limits_app = typer.Typer(
    help="Requests and tokens per minute, per key or team.", no_args_is_help=True
)

ScopeArg = Annotated[str, typer.Argument(help="org:O, team:T, user:U, key:KEY_ID or agent:A")]
TzOption = Annotated[
    str, typer.Option("--tz", help="Time zone of calendar periods.", envvar="TOKENOMY_TZ")
]
BUDGET_COLUMNS = [
    "scope",
    "unit",
    "hard",
    "period",
    "limit",
    "spent",
    "reserved",
    "remaining",
    "period_end",
    "burn_per_day",
    "projected_exhaustion",
    "runs_out_before_reset",
    "alerts",
]


def _decimal(text: str) -> Decimal:
    # Range, sign and finiteness are checked by to_amount, as for the admin API.
    return parse_decimal(text)


@app.command("set")
def set_budget(
    scope: ScopeArg,
    limit: Annotated[str, typer.Option(help="Limit in the unit (USD amounts are exact).")],
    unit: Annotated[str, typer.Option(help="usd or tokens.")] = "usd",
    period: Annotated[str, typer.Option(help="day, week, month, year or total.")] = "month",
    soft: Annotated[bool, typer.Option("--soft", help="Alert only, never refuse.")] = False,
    alert: Annotated[
        str | None, typer.Option(help="Alert thresholds, e.g. 0.5,0.8,1.")
    ] = "0.5,0.8,1",
    db: DbOption = None,
) -> None:
    """Create or replace a budget.

    Example: tokenomy budgets set team:research --limit 500 --period month --alert 0.5,0.8
    """
    try:
        parse_scope(scope)
        if unit not in ("usd", "tokens"):
            raise ValueError("unit must be usd or tokens")
        if period not in PERIODS or period == "minute":
            raise ValueError("period must be day, week, month, year or total")
        with ledger(db) as store:
            b = storage.set_budget(
                store,
                kind=BUDGET,
                scope=scope,
                unit=unit,
                limit=to_amount(unit, _decimal(limit)),
                period=period,
                hard=not soft,
                alerts=parse_alerts(alert),
            )
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{'soft' if soft else 'hard'} {b.label} set")


@app.command("list")
def list_budgets(
    fmt: FormatOption = OutputFormat.table, tz: TzOption = "UTC", db: DbOption = None
) -> None:
    """Budgets with spent, reserved, remaining, period end and projected exhaustion.

    Example: tokenomy budgets list --format json
    """
    try:
        with ledger(db) as store:
            rows = budget_rows(store, kind=BUDGET, tz=tz)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    render(rows, fmt, title="Budgets", columns=BUDGET_COLUMNS)


@app.command("delete")
def delete_budget(
    scope: ScopeArg,
    unit: Annotated[str | None, typer.Option(help="Only this unit (default: all).")] = None,
    db: DbOption = None,
) -> None:
    """Delete the budget(s) on a scope.

    Example: tokenomy budgets delete team:research --unit usd
    """
    try:
        parse_scope(scope)
        with ledger(db) as store:
            n = storage.delete_budgets(store, BUDGET, scope, unit)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if n == 0:
        raise fail(f"no budget on {scope}")
    console.print(f"deleted {n} budget(s) on {scope}")


@app.command("transfer")
def transfer(
    amount: Annotated[str, typer.Argument(help="How much limit to move.")],
    from_scope: Annotated[str, typer.Option("--from", help="Budget giving headroom.")],
    to_scope: Annotated[str, typer.Option("--to", help="Budget receiving it.")],
    unit: Annotated[str, typer.Option(help="usd or tokens.")] = "usd",
    tz: TzOption = "UTC",
    db: DbOption = None,
) -> None:
    """Move part of one budget's limit to another (recorded in the audit trail).

    Example: tokenomy budgets transfer --from team:research --to team:support 100
    """
    try:
        parse_scope(from_scope)
        parse_scope(to_scope)
        with ledger(db) as store:
            src, dst = storage.transfer(
                store, from_scope, to_scope, to_amount(unit, _decimal(amount)), unit, tz
            )
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"moved {amount} {unit}: {src.label}; {dst.label}")


@app.command("audit")
def audit(
    fmt: FormatOption = OutputFormat.table,
    limit: Annotated[int, typer.Option(help="Most recent N entries.")] = 50,
    db: DbOption = None,
) -> None:
    """The audit trail of budget changes and transfers.

    Example: tokenomy budgets audit --format json
    """
    try:
        with ledger(db) as store:
            rows = storage.audit_trail(store, limit)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    for r in rows:
        r["detail"] = (
            ", ".join(f"{k}={v}" for k, v in r["detail"].items())
            if fmt is not OutputFormat.json
            else r["detail"]
        )
    render(
        rows,
        fmt,
        title="Budget audit trail",
        columns=["time", "action", "budget_id", "actor", "detail"],
    )


@limits_app.command("set")
def set_limit(
    scope: Annotated[str, typer.Argument(help="key:KEY_ID or team:T (also org:, user:, agent:)")],
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    db: DbOption = None,
) -> None:
    """Set requests-per-minute and/or tokens-per-minute limits on a scope.

    Example: tokenomy limits set team:research --rpm 600 --tpm 2000000
    """
    try:
        parse_scope(scope)
        if rpm is None and tpm is None:
            raise ValueError("give --rpm and/or --tpm")
        with ledger(db) as store:
            for unit, value in (("requests", rpm), ("tokens", tpm)):
                if value is not None:
                    if value < 0:
                        raise ValueError("limits cannot be negative")
                    storage.set_budget(
                        store,
                        kind=RATE_LIMIT,
                        scope=scope,
                        unit=unit,
                        limit=to_amount(unit, value),
                        period="minute",
                        hard=True,
                    )
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"rate limits on {scope}: rpm={rpm or '-'} tpm={tpm or '-'}")


@limits_app.command("list")
def list_limits(fmt: FormatOption = OutputFormat.table, db: DbOption = None) -> None:
    """Rate limits with what is used in the current minute.

    Example: tokenomy limits list
    """
    try:
        with ledger(db) as store:
            rows = budget_rows(store, kind=RATE_LIMIT)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    render(
        rows,
        fmt,
        title="Rate limits (per minute)",
        columns=["scope", "unit", "limit", "spent", "reserved", "remaining", "period_end"],
    )


@limits_app.command("delete")
def delete_limit(
    scope: ScopeArg,
    unit: Annotated[str | None, typer.Option(help="requests or tokens.")] = None,
    db: DbOption = None,
) -> None:
    """Remove rate limits from a scope.

    Example: tokenomy limits delete key:3f9c2a1b7d4e
    """
    try:
        parse_scope(scope)
        if unit is not None and unit not in UNITS:
            raise ValueError("unit must be requests or tokens")
        with ledger(db) as store:
            n = storage.delete_budgets(store, RATE_LIMIT, scope, unit)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if n == 0:
        raise fail(f"no rate limit on {scope}")
    console.print(f"deleted {n} rate limit(s) on {scope}")
