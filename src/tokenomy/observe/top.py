"""What ``tokenomy top`` shows: a running gateway's live stats as a Rich view.

``fetch`` asks the gateway's admin API (``GET /admin/v1/stats/live``); ``view`` turns
the answer into one screen: totals (requests/s, tokens/s, spend per hour, error rate,
p50/p99 latency) and the top teams, agents and models by spend.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

PATH = "/admin/v1/stats/live"


class TopError(Exception):
    """The gateway could not be asked (down, wrong key, not a tokenomy gateway)."""


def fetch(gateway: str, admin_key: str, window_s: int, timeout_s: float = 5.0) -> dict[str, Any]:
    """The gateway's live stats over the last ``window_s`` seconds."""
    url = f"{gateway.rstrip('/')}{PATH}?window={window_s}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {admin_key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise TopError(f"{url}: HTTP {exc.code}: {message}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TopError(f"{url}: {exc}") from exc


def _money(text: str) -> str:
    return f"${Decimal(text):,.4f}"  # the API sends exact decimal strings


def _top_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, expand=True, title_justify="left")
    for name, justify in (
        (title.rstrip("s").lower(), "left"),
        ("req/s", "right"),
        ("tok/s", "right"),
        ("$/hour", "right"),
        ("errors", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["name"] or "(none)",
            f"{row['requests_per_s']:,.2f}",
            f"{row['tokens_per_s']:,.0f}",
            _money(row["cost_usd_per_hour"]),
            f"{row['error_rate']:.1%}",
        )
    if not rows:
        table.add_row("(no calls)", "", "", "", "")
    return table


def view(stats: dict[str, Any] | None, gateway: str, error: str | None = None) -> RenderableType:
    """One screen of ``tokenomy top``; ``error``: why the last refresh failed."""
    parts: list[RenderableType] = []
    if stats is not None:
        at = datetime.fromtimestamp(stats["now_ms"] / 1000, UTC).strftime("%H:%M:%S UTC")
        p50, p99 = stats["p50_ms"], stats["p99_ms"]
        latency = f"{p50:,.1f} / {p99:,.1f} ms" if p50 is not None and p99 is not None else "-"
        head = Text.assemble(
            ("requests/s ", "bold"),
            f"{stats['requests_per_s']:,.2f}   ",
            ("tokens/s ", "bold"),
            f"{stats['tokens_per_s']:,.0f}   ",
            ("spend ", "bold"),
            f"{_money(stats['cost_usd_per_hour'])}/hour   ",
            ("errors ", "bold"),
            f"{stats['error_rate']:.1%}   ",
            ("p50/p99 ", "bold"),
            latency,
        )
        title = f"tokenomy top — {gateway} — last {stats['window_s']} s — {at}"
        parts.append(Panel(head, title=title, title_align="left"))
        top = stats["top"]
        parts += [
            _top_table("Teams", top["teams"]),
            _top_table("Agents", top["agents"]),
            _top_table("Models", top["models"]),
        ]
    else:
        parts.append(Panel(Text("waiting for the gateway…"), title=f"tokenomy top — {gateway}"))
    if error:
        parts.append(Text(error, style="bold red"))
    return Group(*parts)
