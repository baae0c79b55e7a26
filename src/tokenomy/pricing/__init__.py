"""Pricing: what each request cost, from the genai-prices catalog, custom prices or factories.

Public surface::

    from tokenomy.pricing import PriceBook, Priced
"""

from __future__ import annotations

from tokenomy.pricing.book import PriceBook, Priced

__all__ = ["PriceBook", "Priced"]
