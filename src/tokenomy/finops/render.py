"""A statement (``invoice.Invoice``) as CSV, printable HTML, or a Rich table."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from html import escape

from rich.console import Console
from rich.table import Table

from tokenomy.currency import USD
from tokenomy.finops.invoice import TOKEN_KINDS, Invoice, fmt_amount

_KIND_LABEL = {
    "input_tokens": "input",
    "cached_tokens": "cached",
    "cache_write_tokens": "cache write",
    "output_tokens": "output",
    "reasoning_tokens": "reasoning",
}
_PRICE_KINDS = ("input", "cache_read", "cache_write", "output")


def _who(inv: Invoice) -> str:
    return f"{inv.team} ({inv.org})" if inv.org else inv.team


def _prices(unit: dict[str, Decimal | None]) -> str:
    parts = []
    for k in _PRICE_KINDS:
        value = unit.get(k)
        if value is not None:
            parts.append(f"{k} {fmt_amount(value.quantize(Decimal('0.0001')))}")
    return ", ".join(parts)


def to_csv(inv: Invoice) -> str:
    """Lines, then transfers, then the total, in one CSV with a ``section`` column."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    conv = inv.currency != USD
    extra = [f"cost_{inv.currency.lower()}"] if conv else []
    w.writerow(
        [
            "section",
            "model",
            "agent",
            "requests",
            *TOKEN_KINDS,
            *(f"usd_per_mtok_{k}" for k in _PRICE_KINDS),
            "effective_usd_per_mtok",
            "cost_usd",
            *extra,
        ]
    )
    for line in inv.lines:
        w.writerow(
            [
                "line",
                line.model,
                line.agent,
                line.requests,
                *(line.tokens[k] for k in TOKEN_KINDS),
                *(fmt_amount(line.unit_prices.get(k)) for k in _PRICE_KINDS),
                fmt_amount(line.effective_usd_per_mtok),
                fmt_amount(line.cost_usd),
                *([fmt_amount(inv.converted(line.cost_usd))] if conv else []),
            ]
        )
    for t in inv.transfers:
        w.writerow(
            [
                f"transfer_{t.direction}",
                t.counterpart,
                t.budget,
                "",
                t.time,
                fmt_amount(t.amount),
                t.unit,
            ]
        )
    total_extra = [fmt_amount(inv.converted(inv.total_usd))] if conv else []
    blanks = [""] * (2 + len(TOKEN_KINDS) + len(_PRICE_KINDS) + 1)
    w.writerow(["total", "", *blanks, fmt_amount(inv.total_usd), *total_extra])
    if conv:
        w.writerow(["note", inv.rate_label])
    return buf.getvalue()


def to_html(inv: Invoice) -> str:
    """A self-contained, printable statement (no scripts, no external assets)."""
    conv = inv.currency != USD
    cur = inv.currency
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = "".join(
        f"<th>{escape(h)}</th>"
        for h in (
            "Model",
            "Agent",
            "Requests",
            *(_KIND_LABEL[k] for k in TOKEN_KINDS),
            "Unit prices (USD/Mtok)",
            "Cost (USD)",
            *([f"Cost ({cur})"] if conv else []),
        )
    )
    rows = []
    for line in inv.lines:
        cells = [
            escape(line.model),
            escape(line.agent or "(none)"),
            f"{line.requests:,}",
            *(f"{line.tokens[k]:,}" for k in TOKEN_KINDS),
            escape(
                _prices(line.unit_prices)
                or (
                    f"effective {fmt_amount(line.effective_usd_per_mtok)}"
                    if line.effective_usd_per_mtok is not None
                    else ""
                )
            ),
            fmt_amount(line.cost_usd),
            *([fmt_amount(inv.converted(line.cost_usd))] if conv else []),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    span = 3 + len(TOKEN_KINDS) + 1
    total_row = (
        f'<tr class="total"><td colspan="{span}">Total</td><td>{fmt_amount(inv.total_usd)}</td>'
        + (f"<td>{fmt_amount(inv.converted(inv.total_usd))}</td>" if conv else "")
        + "</tr>"
    )
    transfers = (
        "".join(
            f"<tr><td>{escape(t.time)}</td><td>{escape(t.direction)}</td><td>{escape(t.budget)}</td>"
            f"<td>{escape(t.counterpart)}</td><td>{fmt_amount(t.amount)} {escape(t.unit)}</td>"
            f"<td>{escape(t.actor)}</td></tr>"
            for t in inv.transfers
        )
        or '<tr><td colspan="6">No budget transfers this month.</td></tr>'
    )
    note = f"<p class=note>{escape(inv.rate_label)}</p>" if conv else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Statement {escape(inv.period)} · {escape(_who(inv))}</title>
<style>
body {{ font: 12px/1.4 system-ui, sans-serif; color: #111; margin: 2rem; }}
h1 {{ font-size: 1.3rem; margin: 0; }} h2 {{ font-size: 1rem; margin-top: 1.5rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .25rem .4rem; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
tr.total td {{ font-weight: 700; border-top: 2px solid #111; }}
.meta {{ color: #555; }} .note {{ color: #555; font-size: 11px; }}
@page {{ size: A4 landscape; margin: 12mm; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>Token usage statement — {escape(_who(inv))}</h1>
<p class="meta">Period {escape(inv.period)} (UTC) · generated {now} by tokenomy from the
usage ledger</p>
<h2>Usage by model and agent</h2>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}{total_row}</tbody></table>
{note}
<h2>Budget transfers</h2>
<table><thead><tr><th>Time</th><th>Direction</th><th>Budget</th><th>Counterpart</th>
<th>Amount</th><th>By</th></tr></thead><tbody>{transfers}</tbody></table>
</body></html>
"""


def print_table(inv: Invoice, console: Console) -> None:
    """The statement as Rich tables for a terminal."""
    conv = inv.currency != USD
    t = Table(title=f"Statement {inv.period} — {_who(inv)}")
    for col in ("model", "agent", "requests", *(_KIND_LABEL[k] for k in TOKEN_KINDS)):
        t.add_column(col, justify="left" if col in ("model", "agent") else "right")
    t.add_column("USD/Mtok", overflow="fold")
    t.add_column("cost USD", justify="right")
    if conv:
        t.add_column(f"cost {inv.currency}", justify="right")
    for line in inv.lines:
        t.add_row(
            line.model,
            line.agent or "(none)",
            f"{line.requests:,}",
            *(f"{line.tokens[k]:,}" for k in TOKEN_KINDS),
            _prices(line.unit_prices) or f"eff. {fmt_amount(line.effective_usd_per_mtok)}",
            fmt_amount(line.cost_usd),
            *([fmt_amount(inv.converted(line.cost_usd))] if conv else []),
        )
    t.add_row(
        "total",
        *([""] * (2 + len(TOKEN_KINDS) + 1)),
        fmt_amount(inv.total_usd),
        *([fmt_amount(inv.converted(inv.total_usd))] if conv else []),
        style="bold",
    )
    console.print(t)
    if conv:
        console.print(inv.rate_label)
    if inv.transfers:
        tt = Table(title="Budget transfers")
        for col in ("time", "direction", "budget", "counterpart", "amount", "by"):
            tt.add_column(col)
        for tr in inv.transfers:
            tt.add_row(
                tr.time,
                tr.direction,
                tr.budget,
                tr.counterpart,
                f"{fmt_amount(tr.amount)} {tr.unit}",
                tr.actor,
            )
        console.print(tt)
    else:
        console.print("No budget transfers this month.")


__all__ = ["print_table", "to_csv", "to_html"]
