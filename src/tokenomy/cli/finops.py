"""``tokenomy invoice`` (a team's monthly statement) and ``tokenomy export`` (FOCUS)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import console, err_console, fail, to_json
from tokenomy.config import Settings, load_config
from tokenomy.currency import Rates
from tokenomy.errors import ConfigError, LedgerError
from tokenomy.finops import export as exporter
from tokenomy.finops.invoice import build_invoice
from tokenomy.finops.render import print_table, to_csv, to_html
from tokenomy.ledger.reports import parse_time

PROGRESS_FROM = 50_000  # events; smaller exports finish before a bar is worth drawing


class InvoiceFormat(enum.StrEnum):
    table = "table"
    csv = "csv"
    html = "html"
    json = "json"


ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        envvar="TOKENOMY_CONFIG",
        help="TOML configuration: exchange rates ([currency]) and unit prices.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command()(invoice)
    app.command("export")(export)


def invoice(
    team: Annotated[str, typer.Option(help="The team to bill.")],
    period: Annotated[str, typer.Option(help="The month, YYYY-MM (UTC).")],
    org: Annotated[
        str | None, typer.Option(help="The team's org (team names are unique per org).")
    ] = None,
    currency: Annotated[
        str, typer.Option(help="USD, or a currency with a rate in the config's [currency].")
    ] = "USD",
    fmt: Annotated[InvoiceFormat, typer.Option("--format", "-f")] = InvoiceFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (default: stdout).")
    ] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """A team's statement for one month: usage and cost per model and agent, unit prices,
    budget transfers in and out, and the total (equal to `tokenomy usage` for that team and
    month).

    Example: tokenomy invoice --team research --period 2026-11 --format html -o stmt.html
    """
    try:
        settings: Settings | None = load_config(config) if config else None
        rates = settings.currency if settings is not None else Rates()
        with ledger(db) as store:
            inv = build_invoice(
                store,
                team=team,
                period=period,
                org=org,
                currency=currency,
                rates=rates,
                settings=settings,
            )
    except (ValueError, ConfigError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if fmt is InvoiceFormat.table and output is None:
        print_table(inv, console)
        return
    if fmt is InvoiceFormat.json:
        text = to_json(inv.as_dict()) + "\n"
    elif fmt is InvoiceFormat.csv:
        text = to_csv(inv)
    elif fmt is InvoiceFormat.html:
        text = to_html(inv)
    else:
        raise fail("--format table prints to the terminal; use csv, html or json with --output")
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def export(
    since: Annotated[
        str | None, typer.Option(help="From: YYYY-MM-DD, ISO time, or 24h/7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="To (a bare date includes that day).")] = None,
    fmt: Annotated[
        exporter.ExportFormat, typer.Option("--format", "-f", help="FOCUS 1.2 or raw events.")
    ] = exporter.ExportFormat.focus_csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (default: stdout).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help=f"Progress bar on stderr (default: from {PROGRESS_FROM:,} events).",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Export the ledger in FinOps FOCUS 1.2 columns (focus-csv, focus-parquet) or as raw
    events (csv, jsonl), streamed a page at a time.

    Example: tokenomy export --since 2026-11-01 --until 2026-11-30 -f focus-csv -o spend.csv
    """
    try:
        since_ms = parse_time(since) if since else None
        until_ms = parse_time(until, end_of_day=True) if until else None
        with ledger(db) as store:
            total = exporter.count(store, since_ms, until_ms)
            show = progress if progress is not None else total >= PROGRESS_FROM
            bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                disable=not show,
                transient=False,
            )
            out: BinaryIO = output.open("wb") if output else sys.stdout.buffer
            try:
                with bar:
                    task = bar.add_task(f"export {fmt.value}", total=total)
                    written = exporter.export(
                        store,
                        fmt,
                        out,
                        since_ms=since_ms,
                        until_ms=until_ms,
                        progress=lambda n: bar.advance(task, n),
                    )
            finally:
                if output:
                    out.close()
                else:
                    out.flush()
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if output:
        err_console.print(f"{written:,} events written to {output}")
