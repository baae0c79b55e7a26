"""What commands print: the ``--format`` option, tables, JSON, CSV and one-line errors."""

from __future__ import annotations

import csv
import enum
import io
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenomy import exact_json


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]

# A terminal folds wide tables; a pipe or file gets whole lines (nothing cut or wrapped).
console = Console(width=None if sys.stdout.isatty() else 400)
# Errors are printed verbatim on one line: scripts grep them, and paths may be long.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def to_json(data: Any) -> str:
    """JSON with Decimal written as an exact number literal (never through a float)."""
    return exact_json.dumps(data, indent=2)


def render(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Print rows as a Rich table, JSON list or CSV, with the same keys in every format."""
    cols = list(columns) if columns is not None else (list(rows[0].keys()) if rows else [])
    if fmt is OutputFormat.json:
        sys.stdout.write(to_json(list(rows)) + "\n")
        return
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in cols})
        sys.stdout.write(buf.getvalue())
        return
    table = Table(title=title, show_lines=False)
    for col in cols:
        numeric = bool(rows) and isinstance(rows[0].get(col), int | float | Decimal)
        # fold, never ellipsis: a key id or a cost that is cut off is worse than useless
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c), human=True) for c in cols))
    console.print(table)


def _cell(value: Any, human: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if human and isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(code)
