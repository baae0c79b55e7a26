"""How the economics commands print: metrics, the assumptions behind them, notes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import typer
from rich.table import Table

from tokenomy.cli.output import OutputFormat, console, fail, render, to_json
from tokenomy.economics.decimals import human, sig


@contextmanager
def fail_on(*errors: type[Exception]) -> Iterator[None]:
    """Turn the given errors into the CLI's one-line error and exit code 1."""
    try:
        yield
    except errors as exc:
        raise fail(str(exc)) from exc


def metric(name: str, value: Any, unit: str) -> dict[str, Any]:
    return {"metric": name, "value": value, "unit": unit}


def emit(
    fmt: OutputFormat,
    data: dict[str, Any],
    metrics: list[dict[str, Any]],
    *,
    title: str,
    assumptions: list[dict[str, Any]],
    notes: list[str],
) -> None:
    """JSON: the full result. CSV: the metric rows. Table: metrics, assumptions, notes."""
    if fmt is OutputFormat.json:
        typer.echo(to_json(data))
        return
    if fmt is OutputFormat.csv:
        rows = [
            {**m, "value": sig(m["value"]) if isinstance(m["value"], Decimal) else m["value"]}
            for m in metrics
        ]
        render(rows, fmt, columns=["metric", "value", "unit"])
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for row in metrics:
        table.add_row(row["metric"], show(row["value"]), row["unit"])
    console.print(table)
    print_assumptions(assumptions)
    print_notes(notes)


def print_assumptions(assumptions: list[dict[str, Any]]) -> None:
    table = Table(title="Assumptions", title_justify="left")
    for col in ("name", "value", "unit", "source"):
        table.add_column(col, justify="right" if col == "value" else "left", overflow="fold")
    for a in assumptions:
        table.add_row(
            str(a["name"]), show(a["value"]), str(a.get("unit", "")), str(a.get("source", ""))
        )
    console.print(table)


def print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def show(value: Any) -> str:
    """A value for people: yes/no, grouped digits, exact decimals."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int) or value is None:
        return human(value)
    return str(value)


_SCALES = tuple((Decimal(10) ** k, s) for k, s in ((12, "T"), (9, "G"), (6, "M"), (3, "k")))


def short(value: Decimal | None, unit: str) -> str:
    """Compact number for people: $12.35, 6.12M tokens."""
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${human(value, 4)}"
    for scale, suffix in _SCALES:
        if abs(value) >= scale:
            return f"{human(value / scale, 3)}{suffix}"
    return human(value, 3)
