"""Chargeback: a team's monthly statement from the ledger.

One line per (model, agent) with the tokens of each kind, the unit prices and the cost;
the budget transfers into and out of the team's budgets that month; and the total. The
lines are ``tokenomy.ledger.reports.usage_report`` grouped by model and agent over the
month, so the total equals ``tokenomy usage --where team=T --since M-01 --until M-last``
to the nano-dollar. Amounts stay USD (as stored); another currency is shown beside them
at the dated rate of the config's ``[currency]`` table, and the statement says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from tokenomy.config import Settings
from tokenomy.currency import USD, Rates
from tokenomy.ledger.reports import usage_report
from tokenomy.ledger.store import Store
from tokenomy.money import MTOK, decimal_str

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
TOKEN_KINDS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def period_bounds(period: str) -> tuple[int, int]:
    """``YYYY-MM`` → [first instant, first instant of the next month) in UTC epoch ms."""
    m = _PERIOD.fullmatch(period.strip())
    if m is None:
        raise ValueError(f"period: a month as YYYY-MM, got {period[:20]!r}")
    from tokenomy.ledger.reports import parse_time

    year, month = int(m.group(1)), int(m.group(2))
    nxt = f"{year + (month == 12):04d}-{month % 12 + 1:02d}-01"
    return parse_time(f"{year:04d}-{month:02d}-01"), parse_time(nxt)


@dataclass(frozen=True, slots=True)
class Line:
    """Tokens and cost of one model used by one agent of the team in the month."""

    model: str
    agent: str
    requests: int
    tokens: dict[str, int]
    cost_usd: Decimal
    unit_prices: dict[str, Decimal | None]  # USD per Mtok by kind (config's price book)
    effective_usd_per_mtok: Decimal | None  # cost ÷ all tokens: what the line really paid
    unpriced_requests: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "agent": self.agent,
            "requests": self.requests,
            **self.tokens,
            "unit_prices_usd_per_mtok": self.unit_prices,
            "effective_usd_per_mtok": self.effective_usd_per_mtok,
            "cost_usd": self.cost_usd,
            "unpriced_requests": self.unpriced_requests,
        }


@dataclass(frozen=True, slots=True)
class Transfer:
    """Budget limit moved into (``in``) or out of (``out``) one of the team's budgets."""

    time: str
    direction: str  # "in" | "out"
    budget: str
    counterpart: str
    amount: Decimal | int
    unit: str
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "direction": self.direction,
            "budget": self.budget,
            "counterpart": self.counterpart,
            "amount": self.amount,
            "unit": self.unit,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class Invoice:
    """A team's statement for one month."""

    team: str
    org: str | None
    period: str
    since_ms: int
    until_ms: int
    lines: list[Line]
    transfers: list[Transfer]
    total_usd: Decimal
    currency: str = USD
    rate: Decimal = Decimal(1)
    rate_label: str = "amounts in USD (as stored)"
    by_model: list[dict[str, Any]] = field(default_factory=list)

    def converted(self, usd: Decimal) -> Decimal:
        """``usd`` in the statement's currency (rounded to 1e-6, half-even)."""
        return (usd * self.rate).quantize(Decimal("0.000001"))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "team": self.team,
            "org": self.org,
            "period": self.period,
            "currency": self.currency,
            "lines": [line.as_dict() for line in self.lines],
            "by_model": self.by_model,
            "transfers": [t.as_dict() for t in self.transfers],
            "total_usd": self.total_usd,
        }
        if self.currency != USD:
            out["rate"] = self.rate
            out["rate_label"] = self.rate_label
            out[f"total_{self.currency.lower()}"] = self.converted(self.total_usd)
            for line, raw in zip(self.lines, out["lines"], strict=True):
                raw[f"cost_{self.currency.lower()}"] = self.converted(line.cost_usd)
        return out


def _unit_prices(settings: Settings | None, model: str, ts_ms: int) -> dict[str, Decimal | None]:
    """USD per Mtok by token kind for ``model``'s first deployment in the config."""
    if settings is None:
        return {}
    m = settings.models.get(model)
    if m is None or not m.deployments:
        return {}
    from tokenomy.economics import factory_token_prices
    from tokenomy.pricing import PriceBook
    from tokenomy.pricing.compare import rate_row

    book = PriceBook.from_settings(settings, factory_token_prices(settings.factories))
    return dict(rate_row(book, m.deployments[0], model, "deployment", ts_ms).rates)


def build_invoice(
    store: Store,
    *,
    team: str,
    period: str,
    org: str | None = None,
    currency: str = USD,
    rates: Rates | None = None,
    settings: Settings | None = None,
) -> Invoice:
    """The statement of ``team`` (of ``org``, or of every org with that team) for ``period``.

    Raises:
        ValueError: a bad period, or a currency without a configured rate.
    """
    since, until = period_bounds(period)
    code = currency.upper()
    rates = rates or Rates()
    rate = rates.rate(code)  # ValueError (saying how to configure it) before any query
    label = rates.label(code)
    filters = {"team": team, **({"org": org} if org else {})}
    rows = usage_report(
        store, since_ms=since, until_ms=until, by=["model", "agent"], filters=filters
    )
    lines = []
    prices: dict[str, dict[str, Decimal | None]] = {}
    for r in rows:
        tokens = {k: int(r[k]) for k in TOKEN_KINDS}
        total_tokens = tokens["input_tokens"] + tokens["output_tokens"]
        model = str(r["model"])
        if model not in prices:
            prices[model] = _unit_prices(settings, model, until - 1)
        lines.append(
            Line(
                model=model,
                agent=str(r["agent"]),
                requests=int(r["requests"]),
                tokens=tokens,
                cost_usd=r["cost_usd"],
                unit_prices=prices[model],
                effective_usd_per_mtok=(
                    (r["cost_usd"] * MTOK / total_tokens).quantize(Decimal("0.000001"))
                    if total_tokens
                    else None
                ),
                unpriced_requests=int(r["unpriced_requests"]),
            )
        )
    by_model = [
        {
            "model": r["model"],
            "requests": r["requests"],
            **{k: r[k] for k in TOKEN_KINDS},
            "cost_usd": r["cost_usd"],
        }
        for r in usage_report(store, since_ms=since, until_ms=until, by=["model"], filters=filters)
    ]
    total = sum((line.cost_usd for line in lines), Decimal("0"))
    return Invoice(
        team=team,
        org=org,
        period=period,
        since_ms=since,
        until_ms=until,
        lines=lines,
        transfers=transfers(store, team, since, until),
        total_usd=total,
        currency=code,
        rate=rate,
        rate_label=label,
        by_model=by_model,
    )


def transfers(store: Store, team: str, since_ms: int, until_ms: int) -> list[Transfer]:
    """Transfers into and out of ``team:TEAM`` budgets in [since, until), oldest first.

    Read from the budget audit trail (``transfer_in`` / ``transfer_out`` entries, written by
    ``tokenomy.budgets.storage.transfer`` in the same transaction as the move).
    """
    from tokenomy.budgets.model import from_amount
    from tokenomy.budgets.periods import iso_utc

    scope = f"team:{team}"
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "SELECT ts_ms, action, budget_id, actor, detail FROM budget_audit"
                " WHERE ts_ms >= ? AND ts_ms < ? AND action IN ('transfer_in', 'transfer_out')"
                " ORDER BY ts_ms"
            ),
            (since_ms, until_ms),
        )
        rows = cur.fetchall()
    out = []
    for ts, action, budget_id, actor, detail_text in rows:
        detail = orjson.loads(detail_text) if detail_text else {}
        direction = "in" if action == "transfer_in" else "out"
        mine = detail.get("to") if direction == "in" else detail.get("from")
        if mine != scope:
            continue
        unit = str(detail.get("unit", ""))
        amount = int(detail.get("amount", 0))
        out.append(
            Transfer(
                time=iso_utc(int(ts)) or "",
                direction=direction,
                budget=str(budget_id),
                counterpart=str(detail.get("from") if direction == "in" else detail.get("to")),
                amount=from_amount(unit, amount) if unit else amount,
                unit=unit,
                actor=str(actor),
            )
        )
    return out


def fmt_amount(value: Decimal | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value)
    return str(value)


__all__ = ["TOKEN_KINDS", "Invoice", "Line", "Transfer", "build_invoice", "period_bounds"]
