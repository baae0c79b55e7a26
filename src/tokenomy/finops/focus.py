"""Ledger events as FinOps FOCUS rows (FOCUS specification version 1.2).

One FOCUS row per ledger event (one call through the gateway), so nothing is lost and the
rows add up to ``tokenomy usage`` exactly. FinOps tools (FOCUS-aware cost platforms,
spreadsheets, warehouses) can then ingest AI spend next to cloud bills.

Mapping (FOCUS column → what it holds):

* ``BilledCost`` = ``EffectiveCost`` = ``ListCost`` = ``ContractedCost``: the event's cost in
  USD (the ledger prices at list/catalog or the configured contract price; no separate
  discounts are known). Calls without a known price have 0 and ``x_Unpriced`` = true
  (FOCUS requires a number; the flag keeps the gap visible).
* ``ConsumedQuantity`` / ``ConsumedUnit``: all tokens of the call (input + output), ``Tokens``;
  the kinds are in ``x_InputTokens`` … ``x_ReasoningTokens``.
* ``ChargePeriodStart``/``End``: the UTC hour of the call; ``BillingPeriodStart``/``End``:
  its UTC calendar month.
* ``ChargeCategory`` ``Usage``, ``ChargeFrequency`` ``Usage-Based``,
  ``ServiceCategory`` ``AI and Machine Learning``, ``ServiceSubcategory`` ``Generative AI``.
* ``ProviderName`` / ``PublisherName`` / ``InvoiceIssuerName``: the upstream provider as
  configured (a local factory's calls are issued by the org itself: ``InvoiceIssuerName``
  is the org). ``ServiceName``: ``<provider> LLM API`` (``<provider> local inference``).
* ``SkuId``: ``provider/upstream model``; ``SkuPriceId``: the price source the ledger
  recorded (e.g. ``genai-prices 0.2.3:openai/gpt-4o``).
* ``BillingAccountId``/``Name``: the org; ``SubAccountId``/``Name``: the team.
* ``Tags``: JSON of the call's attribution (team, agent, task, user, key, ...), empty
  values left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from tokenomy.ledger.schema import EVENT_COLUMNS
from tokenomy.money import decimal_str, nanos_to_usd

FOCUS_VERSION = "1.2"
HOUR_MS = 3_600_000

FOCUS_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    # Custom columns (FOCUS: prefixed x_): what a token bill needs beyond the standard.
    "x_RequestId",
    "x_Model",
    "x_Endpoint",
    "x_Status",
    "x_Location",
    "x_InputTokens",
    "x_CachedTokens",
    "x_CacheWriteTokens",
    "x_OutputTokens",
    "x_ReasoningTokens",
    "x_Estimated",
    "x_Unpriced",
    "x_FocusVersion",
)
# Columns holding numbers (Decimal as text in CSV; decimal128 / int64 in Parquet).
DECIMAL_COLUMNS = frozenset(
    {
        "BilledCost",
        "ContractedCost",
        "EffectiveCost",
        "ListCost",
        "ConsumedQuantity",
        "PricingQuantity",
    }
)
INT_COLUMNS = frozenset(
    {
        "x_Status",
        "x_InputTokens",
        "x_CachedTokens",
        "x_CacheWriteTokens",
        "x_OutputTokens",
        "x_ReasoningTokens",
    }
)
BOOL_COLUMNS = frozenset({"x_Estimated", "x_Unpriced"})

_C = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_TAGS = (
    ("team", "team"),
    ("agent", "agent"),
    ("task", "task"),
    ("parent_task", "parent_task"),
    ("step", "step"),
    ("user", "user_id"),
    ("key", "key_id"),
    ("org", "org"),
    ("data_class", "data_class"),
    ("deployment", "deployment"),
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(ms: int) -> tuple[str, str]:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    end = (
        datetime(d.year + 1, 1, 1, tzinfo=UTC)
        if d.month == 12
        else datetime(d.year, d.month + 1, 1, tzinfo=UTC)
    )
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_row(r: Sequence[Any]) -> dict[str, Any]:
    """One ledger row (``EVENT_COLUMNS`` order) as a FOCUS row (``FOCUS_COLUMNS`` keys)."""
    ts = int(r[_C["ts_ms"]])
    hour = ts - ts % HOUR_MS
    month_start, month_end = _month(ts)
    cost_nanos = r[_C["cost_nanos"]]
    cost: Decimal = nanos_to_usd(int(cost_nanos)) if cost_nanos is not None else Decimal(0)
    inp, out = int(r[_C["input_tokens"]]), int(r[_C["output_tokens"]])
    org, team = r[_C["org"]], r[_C["team"]]
    provider = r[_C["provider"]] or "(none)"
    local = r[_C["location"]] == "local"
    upstream = r[_C["upstream_model"]] or r[_C["model"]]
    tags = {name: r[_C[col]] for name, col in _TAGS if r[_C[col]]}
    region = r[_C["region"]] or None
    return {
        "BilledCost": cost,
        "BillingAccountId": org,
        "BillingAccountName": org,
        "BillingCurrency": "USD",
        "BillingPeriodEnd": month_end,
        "BillingPeriodStart": month_start,
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": f"{r[_C['model']]} {r[_C['endpoint']]} call",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": _iso(hour + HOUR_MS),
        "ChargePeriodStart": _iso(hour),
        "ConsumedQuantity": Decimal(inp + out),
        "ConsumedUnit": "Tokens",
        "ContractedCost": cost,
        "ContractedUnitPrice": None,
        "EffectiveCost": cost,
        "InvoiceIssuerName": (org or "(self)") if local else provider,
        "ListCost": cost,
        "ListUnitPrice": None,
        "PricingCategory": "Standard",
        "PricingCurrency": "USD",
        "PricingQuantity": Decimal(inp + out),
        "PricingUnit": "Tokens",
        "ProviderName": provider,
        "PublisherName": provider,
        "RegionId": region,
        "RegionName": region,
        "ResourceId": r[_C["deployment"]] or f"{provider}/{upstream}",
        "ResourceName": upstream,
        "ResourceType": "LLM deployment",
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": f"{provider} {'local inference' if local else 'LLM API'}",
        "ServiceSubcategory": "Generative AI",
        "SkuId": f"{provider}/{upstream}",
        "SkuPriceId": r[_C["price_source"]] or None,
        "SubAccountId": team,
        "SubAccountName": team,
        "Tags": orjson.dumps(tags).decode(),
        "x_RequestId": r[_C["id"]],
        "x_Model": r[_C["model"]],
        "x_Endpoint": r[_C["endpoint"]],
        "x_Status": int(r[_C["status"]]),
        "x_Location": r[_C["location"]],
        "x_InputTokens": inp,
        "x_CachedTokens": int(r[_C["cached_tokens"]]),
        "x_CacheWriteTokens": int(r[_C["cache_write_tokens"]]),
        "x_OutputTokens": out,
        "x_ReasoningTokens": int(r[_C["reasoning_tokens"]]),
        "x_Estimated": bool(r[_C["estimated"]]),
        "x_Unpriced": cost_nanos is None,
        "x_FocusVersion": FOCUS_VERSION,
    }


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["FOCUS_COLUMNS", "FOCUS_VERSION", "csv_cell", "focus_row"]
