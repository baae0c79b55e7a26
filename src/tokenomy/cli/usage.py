"""``tokenomy usage``: who used how many tokens, on what, at what cost."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, fail, render
from tokenomy.errors import LedgerError
from tokenomy.ledger.reports import (
    USAGE_COLUMNS,
    parse_fields,
    parse_time,
    parse_where,
    usage_report,
)


def register(app: typer.Typer) -> None:
    app.command()(usage)


def usage(
    since: Annotated[
        str | None, typer.Option(help="From: YYYY-MM-DD, ISO time, or 24h/7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="To (a bare date includes that day).")] = None,
    by: Annotated[
        str | None,
        typer.Option(
            help="Group by a comma list of org, team, user, key, agent, task, step, model, "
            "provider, location, deployment, region, data_class, day (also status, "
            "error_kind, endpoint, fallback_reason, parent_task)."
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where", help="Filter FIELD=VALUE (repeatable), e.g. --where team=research."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Report token usage and cost from the ledger.

    Example: tokenomy usage --since 7d --by team,model --format json
    """
    try:
        fields = parse_fields(by)
        since_ms = parse_time(since) if since else None
        until_ms = parse_time(until, end_of_day=True) if until else None
        filters = parse_where(where or [])
        with ledger(db) as store:
            rows = usage_report(
                store, since_ms=since_ms, until_ms=until_ms, by=fields, filters=filters
            )
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    render(rows, fmt, title="Token usage", columns=[*fields, *USAGE_COLUMNS])
