"""Prices for calls made elsewhere: the genai-prices catalog in force at each call's time.

``tokenomy ledger import`` prices the rows of a usage export that carry no cost with it.
"""

from __future__ import annotations

from typing import Any

from genai_prices import data_snapshot

from tokenomy.events import Usage
from tokenomy.pricing import catalog


class CatalogPricer:
    """Prices imported calls from the genai-prices catalog at their timestamp."""

    def __init__(self) -> None:
        self._catalog = catalog
        self._snapshot = catalog.snapshot()
        self._models: dict[tuple[str, str], Any] = {}

    def price(self, provider: str, model: str, usage: Usage, ts_ms: int) -> tuple[int, str]:
        """``(cost_nanos, source)``; ValueError when the catalog cannot price the call."""
        key = (provider, model)
        found = self._models.get(key)
        if found is None:
            cat_provider = (
                data_snapshot.find_provider_by_id(self._snapshot.providers, provider)
                if provider
                else None
            )
            try:
                matched = self._catalog.find_model(self._snapshot, cat_provider, model)
            except LookupError:
                where = f"provider {provider!r}" if provider else "any provider"
                raise ValueError(
                    f"model {model!r} is not priced by {where} in the "
                    f"{self._catalog.CATALOG_VERSION} catalog: give cost_usd"
                ) from None
            found = self._models[key] = self._catalog.CatalogModel(*matched)
        card = found.card_at(ts_ms)
        if card.problem:
            raise ValueError(f"{card.source}: {card.problem}: give cost_usd")
        nanos = card.nanos(usage)
        if nanos is None:
            raise ValueError(f"usage cannot be priced: {card.leaf_problem(usage)}")
        return int(nanos), card.source
