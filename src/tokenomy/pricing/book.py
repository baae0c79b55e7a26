"""The price book: what one request through one deployment cost, in nano-USD.

Which price applies to a deployment, first match wins:

1. ``price = "ID"`` on the deployment: the custom price ``[prices.ID]`` (source ``custom:ID``).
2. ``factory`` on the deployment, else on its provider: the factory's production cost
   (source ``factory:NAME``), supplied by the economics room as ``factory_prices``.
3. The genai-prices catalog at the request's timestamp (source
   ``genai-prices 0.2.3:PROVIDER/MODEL``), the catalog provider chosen by
   :func:`tokenomy.pricing.catalog.infer_catalog_provider`.

Custom prices (USD per million tokens) charge each bucket of the usage once: uncached input
(``input - cached - cache_write``, audio included) at ``input``; cache reads at ``cache_read``
(default: ``input``); 5-minute cache writes at ``cache_write`` (default: ``input``); 1-hour
cache writes at ``cache_write_1h`` (default: ``cache_write``); all output, reasoning and audio
included, at ``output``; plus ``per_request``. The defaults never invent a discount or a
surcharge the contract does not state. Factory costs charge all input at the factory's input
cost (a local prefix cache saves compute, but we do not know how much) and all output at its
output cost.

Resolution (which provider, which catalog model, which dated price) happens once per
deployment and price-validity window; :meth:`PriceBook.price` then does integer arithmetic
only and rounds to nano-USD once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from tokenomy.config import Deployment, PriceSection, Settings
from tokenomy.events import Usage
from tokenomy.money import nanos_to_usd
from tokenomy.pricing import catalog
from tokenomy.pricing._ratecard import (
    CACHE_WRITE_1H,
    CACHED,
    INPUT,
    OUTPUT,
    Bucket,
    RateCard,
    unit_vector,
)

logger = logging.getLogger("tokenomy.pricing")

_UNCACHED_INPUT = (1, -1, -1, 0, 0, 0, 0, 0)
_FIVE_MINUTE_WRITES = (0, 0, 1, -1, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Priced:
    """The price of one request.

    Attributes:
        cost_nanos: Cost in whole nano-USD; ``None`` when no price is known or the usage is
            inconsistent (never a silent 0).
        source: Which price was used, e.g. ``"genai-prices 0.2.3:openai/gpt-4o"``,
            ``"custom:negotiated"`` or ``"factory:h100-rack"``; ``""`` when ``cost_nanos`` is None.
        warning: Why there is no cost, or what is odd about it (a catalog model listed
            without any price is priced at 0 with a warning); ``""`` otherwise.
    """

    cost_nanos: int | None
    source: str
    warning: str = ""

    @property
    def cost_usd(self) -> Decimal | None:
        """The stored cost as exact USD, for display."""
        return None if self.cost_nanos is None else nanos_to_usd(self.cost_nanos)


def custom_card(price_id: str, p: PriceSection) -> RateCard:
    """Rate card for a ``[prices.ID]`` section (defaults in the module docstring)."""
    cache_read = p.input if p.cache_read is None else p.cache_read
    cache_write = p.input if p.cache_write is None else p.cache_write
    cache_write_1h = cache_write if p.cache_write_1h is None else p.cache_write_1h
    buckets = [
        Bucket("uncached input", _UNCACHED_INPUT, "input", p.input),
        Bucket("cache reads", unit_vector(CACHED), "input", cache_read),
        Bucket("5-minute cache writes", _FIVE_MINUTE_WRITES, "input", cache_write),
        Bucket("1-hour cache writes", unit_vector(CACHE_WRITE_1H), "input", cache_write_1h),
        Bucket("output", unit_vector(OUTPUT), "output", p.output),
    ]
    if p.per_request:
        buckets.append(Bucket("requests", None, "", p.per_request, per=1))
    return RateCard(f"custom:{price_id}", buckets)


def factory_card(name: str, input_usd_mtok: Decimal, output_usd_mtok: Decimal) -> RateCard:
    """Rate card for a local token factory's production cost (USD per million tokens)."""
    return RateCard(
        f"factory:{name}",
        [
            Bucket("input", unit_vector(INPUT), "input", input_usd_mtok),
            Bucket("output", unit_vector(OUTPUT), "output", output_usd_mtok),
        ],
    )


class _Pricer:
    """How one deployment is priced: a fixed card, a catalog model, or a known absence."""

    __slots__ = ("card", "deployment", "model", "unknown")

    def __init__(
        self,
        deployment: Deployment,
        card: RateCard | None = None,
        model: catalog.CatalogModel | None = None,
        unknown: Priced | None = None,
    ) -> None:
        self.deployment = deployment
        self.card = card
        self.model = model
        self.unknown = unknown

    def card_at(self, ts_ms: int, context: Mapping[str, str] | None) -> RateCard | None:
        if self.card is not None:
            return self.card
        if self.model is not None:
            return self.model.card_at(ts_ms, context)
        return None


class PriceBook:
    """Prices requests per deployment: custom prices, factory costs, the genai-prices catalog.

    Args:
        prices: Custom prices by id (``Settings.prices``).
        factory_prices: Production cost of local factories by name: ``(input, output)`` in USD
            per million tokens, from the economics room.

    Example::

        book = PriceBook.from_settings(settings)
        priced = book.price(deployment, usage, ts_ms)
        event.cost_nanos, event.price_source = priced.cost_nanos, priced.source
    """

    _MAX_PRICERS = 10_000

    def __init__(
        self,
        prices: Mapping[str, PriceSection] | None = None,
        factory_prices: Mapping[str, tuple[Decimal, Decimal]] | None = None,
    ) -> None:
        self.catalog_version = catalog.CATALOG_VERSION
        self._snapshot = catalog.snapshot()
        self._custom = {pid: custom_card(pid, p) for pid, p in (prices or {}).items()}
        self._factory = {
            name: factory_card(name, i, o) for name, (i, o) in (factory_prices or {}).items()
        }
        self._pricers: dict[int, _Pricer] = {}
        self._catalog_models: dict[
            tuple[str, str, str, str | None, str], catalog.CatalogModel | Priced
        ] = {}
        self._warned: set[tuple[str, str, str]] = set()

    @classmethod
    def from_settings(
        cls, settings: Settings, factory_prices: Mapping[str, tuple[Decimal, Decimal]] | None = None
    ) -> PriceBook:
        """Build the book for a configuration and resolve every configured deployment now,
        so that unknown models are reported at start-up rather than on first traffic."""
        book = cls(settings.prices, factory_prices)
        now_ms = time.time_ns() // 1_000_000
        for model in settings.models.values():
            for deployment in model.deployments:
                pricer = book._pricer(deployment)
                card = pricer.card_at(now_ms, None)  # compiles today's catalog price too
                if card is not None and card.problem:
                    book._unusable(deployment, card)
        return book

    def price(
        self,
        deployment: Deployment,
        usage: Usage,
        ts_ms: int,
        *,
        price_context: Mapping[str, str] | None = None,
    ) -> Priced:
        """Price one request.

        Args:
            deployment: Where the request went.
            usage: Its usage in tokenomy's convention (see :mod:`tokenomy.events`).
            ts_ms: Request start, Unix epoch milliseconds; selects dated catalog prices.
            price_context: genai-prices price-variant context, e.g. ``{"service_tier": "flex"}``
                or ``{"processing": "batch"}``; catalog prices only.

        Returns:
            The cost in nano-USD (rounded once), the price used, and a warning if unpriced.
        """
        pricer = self._pricers.get(id(deployment))
        if pricer is None or pricer.deployment is not deployment:
            pricer = self._pricer(deployment)
        card = pricer.card_at(ts_ms, price_context)
        if card is None or card.problem:
            return pricer.unknown or self._unusable(deployment, card)
        nanos = card.nanos(usage)
        if nanos is None:
            return self._inconsistent(deployment, card, usage)
        if card.note:
            return Priced(nanos, card.source, self._note(deployment, card.note))
        return Priced(nanos, card.source)

    def card(
        self,
        deployment: Deployment,
        ts_ms: int,
        *,
        price_context: Mapping[str, str] | None = None,
    ) -> RateCard | None:
        """The rate card that prices ``deployment`` at ``ts_ms`` (``None``: no usable price)."""
        pricer = self._pricers.get(id(deployment))
        if pricer is None or pricer.deployment is not deployment:
            pricer = self._pricer(deployment)
        card = pricer.card_at(ts_ms, price_context)
        return None if card is None or card.problem else card

    def max_cost_nanos(
        self,
        deployment: Deployment,
        input_tokens: int,
        max_output_tokens: int,
        ts_ms: int,
        *,
        price_context: Mapping[str, str] | None = None,
    ) -> int | None:
        """Worst-case cost of a request, for budget reservations.

        Every input token is charged at the dearest input rate of the tier that
        ``input_tokens`` selects (or any lower tier): uncached input, cache writes (1-hour
        writes cost 2x input at Anthropic), audio. Every output token at the dearest output
        rate, plus per-request fees, rounded up. ``price()`` of any consistent usage with at
        most these token counts never exceeds it. ``None`` when no price is known.
        """
        pricer = self._pricers.get(id(deployment))
        if pricer is None or pricer.deployment is not deployment:
            pricer = self._pricer(deployment)
        card = pricer.card_at(ts_ms, price_context)
        if card is None or card.problem:
            return None
        return card.max_nanos(input_tokens, max_output_tokens)

    # -- resolution (once per deployment) --------------------------------------------------

    def _pricer(self, deployment: Deployment) -> _Pricer:
        pricer = self._build(deployment)
        if len(self._pricers) >= self._MAX_PRICERS:
            self._pricers.clear()  # callers building deployments per request must not leak
        # Keyed by identity: Deployment holds a dict (headers), so it is not hashable. The
        # pricer keeps the deployment alive, so its id cannot be reused while cached.
        self._pricers[id(deployment)] = pricer
        return pricer

    def _build(self, deployment: Deployment) -> _Pricer:
        provider = deployment.provider
        if deployment.price is not None:
            card = self._custom.get(deployment.price)
            if card is None:
                return _Pricer(
                    deployment,
                    unknown=self._warn(deployment, f"unknown custom price id {deployment.price!r}"),
                )
            return _Pricer(deployment, card=card)
        factory = deployment.factory or provider.factory
        if factory is not None:
            card = self._factory.get(factory)
            if card is None:
                return _Pricer(
                    deployment,
                    unknown=self._warn(
                        deployment, f"no production cost known for factory {factory!r}"
                    ),
                )
            return _Pricer(deployment, card=card)
        resolved = self._catalog_model(deployment)
        if isinstance(resolved, Priced):
            return _Pricer(deployment, unknown=resolved)
        return _Pricer(deployment, model=resolved)

    def _catalog_model(self, deployment: Deployment) -> catalog.CatalogModel | Priced:
        provider = deployment.provider
        # Everything the resolution depends on, so equal names from different configs differ.
        key = (
            provider.name,
            provider.kind,
            provider.base_url,
            provider.catalog_provider,
            deployment.model,
        )
        found = self._catalog_models.get(key)
        if found is not None:
            return found
        cat_provider, problem = catalog.infer_catalog_provider(self._snapshot, provider)
        result: catalog.CatalogModel | Priced
        if problem:
            result = self._warn(deployment, problem)
        else:
            try:
                matched = catalog.find_model(self._snapshot, cat_provider, deployment.model)
            except LookupError:
                where = f"provider {cat_provider.id!r}" if cat_provider else "any provider"
                problem = (
                    f"model {deployment.model!r} is not priced by {where} in the"
                    f" {catalog.CATALOG_VERSION} catalog"
                )
                result = self._warn(deployment, problem)
            else:
                result = catalog.CatalogModel(*matched)
        self._catalog_models[key] = result
        return result

    # -- warnings (logged once per provider and model) -------------------------------------

    def _warn(self, deployment: Deployment, problem: str, kind: str = "price") -> Priced:
        message = (
            f"no price for provider {deployment.provider.name!r} model"
            f" {deployment.model!r}: {problem}"
        )
        key = (deployment.provider.name, deployment.model, kind)
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("%s", message)
        return Priced(None, "", message)

    def _note(self, deployment: Deployment, note: str) -> str:
        message = f"provider {deployment.provider.name!r} model {deployment.model!r}: {note}"
        key = (deployment.provider.name, deployment.model, "note")
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("%s", message)
        return message

    def _unusable(self, deployment: Deployment, card: RateCard | None) -> Priced:
        problem = card.problem if card is not None else "no price"
        return self._warn(deployment, f"{card.source if card else ''}: {problem}", "unusable")

    def _inconsistent(self, deployment: Deployment, card: RateCard, usage: Usage) -> Priced:
        # Slow path by design: a bad usage record is rare and needs a precise message.
        return self._warn(deployment, f"inconsistent usage: {card.leaf_problem(usage)}", "usage")
