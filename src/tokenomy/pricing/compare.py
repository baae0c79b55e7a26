"""Prices side by side: the configured deployments of a model and the catalog's equivalents.

Every rate shown is what the price book would charge, read back by pricing probe usages
(100,000 tokens of one kind, minus the per-request fee) with the rate cards that price live
traffic, before rounding to nano-USD, so the table can never disagree with the ledger.
100,000 tokens stays below every context tier in the catalog (the smallest starts at 128k),
so the base rate is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from tokenomy.config import Deployment, Provider, Settings
from tokenomy.events import Usage
from tokenomy.pricing import catalog
from tokenomy.pricing.book import PriceBook

_PROBE = 100_000
_PER_MTOK = Decimal(1_000_000) / _PROBE

# Usage probes, one per rate column (tokenomy's convention: cache reads and writes are
# parts of input_tokens).
PROBES: dict[str, Usage] = {
    "input": Usage(input_tokens=_PROBE),
    "output": Usage(output_tokens=_PROBE),
    "cache_read": Usage(input_tokens=_PROBE, cached_tokens=_PROBE),
    "cache_write": Usage(input_tokens=_PROBE, cache_write_tokens=_PROBE),
}
RATE_COLUMNS = tuple(PROBES)


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One place a model can run and what it charges, in USD per million tokens."""

    model: str  # the gateway's model name (or the catalog id asked for)
    origin: str  # "deployment" (configured) | "catalog" (an equivalent elsewhere)
    provider: str
    upstream_model: str
    location: str  # "cloud" | "local"
    price_source: str
    rates: dict[str, Decimal | None]  # RATE_COLUMNS → USD/Mtok; None: not priced
    per_request: Decimal  # USD per request (custom prices only)
    problem: str = ""


def rate_row(
    book: PriceBook, deployment: Deployment, model: str, origin: str, ts_ms: int
) -> PriceRow:
    """The rates ``book`` charges for ``deployment`` at ``ts_ms``, exact (not rounded)."""
    base = book.price(deployment, Usage(), ts_ms)  # the source, and why it may be unpriced
    card = book.card(deployment, ts_ms)
    fee = card.exact_usd(Usage()) if card is not None else None
    rates: dict[str, Decimal | None] = {}
    for column, probe in PROBES.items():
        cost = card.exact_usd(probe) if card is not None else None
        rates[column] = None if cost is None or fee is None else (cost - fee) * _PER_MTOK
    return PriceRow(
        model,
        origin,
        deployment.provider.name,
        deployment.model,
        deployment.provider.location,
        base.source,
        rates,
        fee if fee is not None else Decimal(0),
        base.warning,  # unpriced, or priced but worth saying (no prices listed: "free")
    )


def catalog_deployment(provider_id: str, model_id: str) -> Deployment:
    """A deployment only the catalog prices: ``model_id`` at catalog provider ``provider_id``."""
    provider = Provider(
        name=provider_id,
        kind="openai",
        base_url="https://catalog.invalid",
        api_key_env=None,
        location="cloud",
        catalog_provider=provider_id,
        factory=None,
        headers={},
    )
    return Deployment(provider, model_id, None, None)


def catalog_equivalents(model_ref: str, vendor: str | None = None) -> list[tuple[str, str]]:
    """``(catalog provider id, catalog model id)`` of every catalog provider listing the model.

    Aggregators list other vendors' models as ``vendor/model`` (``deepseek/deepseek-chat``),
    so that form is tried too when the model's own vendor is known.
    """
    refs = [model_ref]
    if vendor and "/" not in model_ref:
        refs.append(f"{vendor}/{model_ref}")
    found: list[tuple[str, str]] = []
    for provider in catalog.snapshot().providers:
        for ref in refs:
            info = provider.find_model(ref)
            if info is not None:
                found.append((provider.id, info.id))
                break
    return found


def _vendor(deployment: Deployment) -> str | None:
    snap = catalog.snapshot()
    cat_provider, problem = catalog.infer_catalog_provider(snap, deployment.provider)
    return None if problem or cat_provider is None else cat_provider.id


def _catalog_identity(deployment: Deployment) -> tuple[str, str] | None:
    """The catalog entry pricing a configured deployment (shown once, as the deployment)."""
    snap = catalog.snapshot()
    cat_provider, problem = catalog.infer_catalog_provider(snap, deployment.provider)
    if problem:
        return None
    try:
        provider, info = catalog.find_model(snap, cat_provider, deployment.model)
    except LookupError:
        return None
    return provider.id, info.id


def compare(
    settings: Settings,
    book: PriceBook,
    ts_ms: int,
    models: Sequence[str] = (),
    provider: str | None = None,
) -> list[PriceRow]:
    """Rows for the named models (all configured ones when none are named).

    A name the config does not know is looked up in the catalog, so ``tokenomy prices
    deepseek-chat`` compares providers even before the model is configured.

    Raises:
        ValueError: a named model is neither configured nor in the catalog.
    """
    rows: list[PriceRow] = []
    for name in models or list(settings.models):
        configured = settings.models.get(name)
        if configured is None:
            found = catalog_equivalents(name)
            if not found:
                raise ValueError(
                    f"model {name!r} is neither configured nor in the {catalog.CATALOG_VERSION} "
                    "catalog"
                )
            rows.extend(_catalog_rows(book, name, found, set(), ts_ms))
            continue
        seen: set[tuple[str, str]] = set()
        for dep in configured.deployments:
            rows.append(rate_row(book, dep, name, "deployment", ts_ms))
            # A catalog-priced deployment is its catalog entry; a negotiated or factory price
            # is not, and the list price beside it is worth seeing.
            listed = dep.price is None and (dep.factory or dep.provider.factory) is None
            identity = _catalog_identity(dep) if listed else None
            if identity is not None:
                seen.add(identity)
        equivalents: list[tuple[str, str]] = []
        for dep in configured.deployments:
            if dep.provider.location == "local":
                continue  # a local box runs open weights under its own name
            for pair in catalog_equivalents(dep.model, _vendor(dep)):
                if pair not in equivalents:
                    equivalents.append(pair)
        rows.extend(_catalog_rows(book, name, equivalents, seen, ts_ms))
    if provider is not None:
        rows = [r for r in rows if r.provider == provider]
    return rows


def _catalog_rows(
    book: PriceBook,
    name: str,
    found: Iterable[tuple[str, str]],
    skip: set[tuple[str, str]],
    ts_ms: int,
) -> list[PriceRow]:
    rows = []
    with _quiet_book():
        for provider_id, model_id in found:
            if (provider_id, model_id) in skip:
                continue
            dep = catalog_deployment(provider_id, model_id)
            row = rate_row(book, dep, name, "catalog", ts_ms)
            # An equivalent is worth showing only with a real price: not unpriced, and not
            # "free" because the catalog lists no price (a subscription, not a token price).
            if not row.problem and None not in row.rates.values():
                rows.append(row)
    # Cheapest first: what a buyer scans for.
    rows.sort(key=lambda r: (r.rates["output"] is None, r.rates["output"] or 0, r.provider))
    return rows


@contextmanager
def _quiet_book() -> Iterator[None]:
    """Catalog equivalents that turn out unpriced are dropped: no need to warn about them."""
    log = logging.getLogger("tokenomy.pricing")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
