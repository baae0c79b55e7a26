"""``tokenomy ledger``: the ledger's quarantine of rows the database refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render
from tokenomy.errors import LedgerError

app = typer.Typer(
    help="Inspect the usage ledger: rows the database refused (dead letters).",
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
