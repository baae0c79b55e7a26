"""``tokenomy tasks``, ``tokenomy value`` and ``tokenomy shredder``: agent economics."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, fail, render
from tokenomy.errors import LedgerError
from tokenomy.ledger.reports import parse_time
from tokenomy.tasks.reports import (
    SHREDDER_COLUMNS,
    TASK_COLUMNS,
    VALUE_COLUMNS,
    shredder_report,
    tasks_report,
    value_report,
)

SinceOption = Annotated[str | None, typer.Option(help="From: YYYY-MM-DD, ISO time, or 24h/7d.")]
FINDING_COLUMNS = ("time", "org", "team", "task", "agent", "kind", "evidence", "tokens", "cost_usd")
TABLE_TASK_COLUMNS = (
    "task",
    "team",
    "agent",
    "calls",
    "tokens",
    "cost_usd",
    "duration_s",
    "outcome",
    "value_usd",
    "subtasks",
)
UntilOption = Annotated[str | None, typer.Option(help="To (a bare date includes that day).")]


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks)
    app.command("value")(value)
    app.command("shredder")(shredder)


def _times(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    return (
        parse_time(since) if since else None,
        parse_time(until, end_of_day=True) if until else None,
    )


def tasks(
    agent: Annotated[str | None, typer.Option(help="Only this agent's tasks.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's tasks.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """List agent tasks: calls, tokens per step kind, cost, duration, outcome, value.

    Sub-tasks (X-Tokenomy-Parent-Task) are rolled up into their root task.

    Example: tokenomy tasks --agent coder --since 24h --format json
    """
    try:
        since_ms, until_ms = _times(since, until)
        with ledger(db) as store:
            rows = tasks_report(store, since_ms=since_ms, until_ms=until_ms, agent=agent, team=team)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    # People get the short version; tokens per step kind are in the JSON and CSV.
    columns = TABLE_TASK_COLUMNS if fmt is OutputFormat.table else TASK_COLUMNS
    render(rows, fmt, title="Tasks", columns=columns)


def value(
    by: Annotated[
        str | None, typer.Option(help="Group by agent, team or model (default: all tasks).")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Cost per successful task (cost-of-pass), success rate and value per USD spent.

    Cost per success divides the cost of all tasks, failed ones included, by the
    successes. Tasks without an outcome are counted apart. Totals equal
    `tokenomy usage --by task`.

    Example: tokenomy value --by agent --format json
    """
    try:
        since_ms, until_ms = _times(since, until)
        with ledger(db) as store:
            rows = value_report(store, by=by, since_ms=since_ms, until_ms=until_ms)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    render(rows, fmt, title="Value", columns=[*([by] if by else []), *VALUE_COLUMNS])


def shredder(
    since: SinceOption = None,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """Token-shredder findings: loops, repeated errors, bloat, retry storms, outliers.

    Example: tokenomy shredder --since 24h --format json
    """
    try:
        since_ms, _ = _times(since, None)
        with ledger(db) as store:
            rows = shredder_report(store, since_ms=since_ms)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    columns = SHREDDER_COLUMNS if fmt is OutputFormat.table else FINDING_COLUMNS
    render(rows, fmt, title="Token shredder findings", columns=columns)
