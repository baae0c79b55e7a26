"""``tokenomy ledger``: the ledger's quarantine of rows the database refused; imports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import (
    FormatOption,
    OutputFormat,
    console,
    err_console,
    fail,
    render,
    to_json,
)
from tokenomy.errors import LedgerError

app = typer.Typer(
    help="Inspect the usage ledger (rows the database refused) and import history.",
    no_args_is_help=True,
)

COLUMNS = ["seq", "event_id", "quarantined", "source", "error", "resolved", "encoding", "line"]


@app.command("dead-letters")
def dead_letters(
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Also list rows inserted since (resolved).")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    db: DbOption = None,
) -> None:
    """List usage events the database refused, kept instead of blocking later events.

    Rows not even the dead-letter table took are in the journal directory's dead-letters.jsonl.

    Example: tokenomy ledger dead-letters --db sqlite:///tokenomy.db --format json
    """
    try:
        with ledger(db) as store:
            letters = store.dead_letters(include_resolved=include_resolved)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    rows = []
    for d in letters:
        row = d.as_dict()
        row["quarantined"] = datetime.fromtimestamp(d.quarantined_ms / 1000, UTC).isoformat(
            timespec="seconds"
        )
        rows.append(row)
    render(rows, fmt, title="Quarantined usage events", columns=COLUMNS)


@app.command("retry-dead-letters")
def retry_dead_letters(db: DbOption = None) -> None:
    """Insert the quarantined events that the database takes now; keep the others.

    Example: tokenomy ledger retry-dead-letters --db postgresql://ledger-host/tokenomy
    """
    try:
        with ledger(db) as store:
            inserted, refused = store.retry_dead_letters()
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{inserted} inserted, {refused} still refused")


@app.command("import")
def import_cmd(
    file: Annotated[str, typer.Argument(help="JSON lines or CSV file of usage events.")],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="jsonl or csv [default: from the file extension]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and price only; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Import usage history (fields: docs/economics.md), idempotent by ``id``.

    Every row is validated first: a bad row is reported with its line number and nothing
    is imported. Rows without cost_usd are priced from the genai-prices catalog at ts.

    Example: tokenomy ledger import history.jsonl --db sqlite:///tokenomy.db
    """
    from rich.progress import Progress

    from tokenomy.budgets import storage as budget_storage
    from tokenomy.ledger.importer import count_rows, import_file
    from tokenomy.pricing.history import CatalogPricer

    try:
        total = count_rows(file)
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("importing", total=total)
            with ledger(db) as store:
                result = import_file(
                    store,
                    file,
                    file_format,
                    dry_run=dry_run,
                    progress=lambda n: bar.update(task, completed=n),
                    pricer=CatalogPricer(),
                )
                if result.imported and not dry_run:
                    # Budgets count the period's spend from the ledger, imported spend too.
                    budget_storage.rebuild_from_ledger(store, budget_storage.list_budgets(store))
    except (ValueError, OSError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(to_json(result.to_dict()))
        return
    verb = "would import" if dry_run else "imported"
    console.print(
        f"{verb} {result.imported} of {result.rows} rows "
        f"({result.priced_from_catalog} priced from the catalog, ${result.cost_usd:,.2f}); "
        f"skipped {len(result.skipped_ids)} already in the ledger"
        + (f": {', '.join(result.skipped_ids[:5])}" if result.skipped_ids else "")
        + ("…" if len(result.skipped_ids) > 5 else "")
    )
