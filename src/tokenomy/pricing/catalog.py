"""The genai-prices catalog, adapted to tokenomy's hot path.

Three jobs, each done once per deployment (or once per price-validity window), never per request:

* **Which catalog provider** prices a configured provider: :func:`infer_catalog_provider`.
* **Which catalog model** a deployment's upstream model is, and which of its dated or
  time-of-day prices applies when: :class:`CatalogModel` and :func:`validity_window`.
* **Compiling** a genai-prices ``ModelPrice`` into a :class:`~._ratecard.RateCard` whose
  buckets are exactly the leaves genai-prices itself would price (see :func:`compile_model_price`).

genai-prices counts usage the way tokenomy does: its ``input_tokens`` includes cache reads and
writes (``cache_read_tokens`` and ``cache_write_tokens`` are *descendants* of ``input_tokens``
in its unit registry), and every priced unit is charged for its count minus the counts of its
priced descendants. We reproduce that decomposition symbolically, once, as leaf vectors.

Only the bundled, pinned snapshot is used: nothing here fetches prices from the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot, types
from genai_prices.data_units import unit_data
from genai_prices.decompose import is_descendant_or_self
from genai_prices.units import UnitDef, UnitRegistry
from genai_prices.validation import validate_priced_units

from tokenomy.config import Provider
from tokenomy.pricing._ratecard import (
    AUDIO_IN,
    AUDIO_OUT,
    CACHE_WRITE,
    CACHE_WRITE_1H,
    CACHED,
    INPUT,
    OUTPUT,
    REASONING,
    ZERO,
    Bucket,
    RateCard,
    Vector,
    unit_vector,
)
from tokenomy.wire import WIRES

CATALOG_VERSION = f"genai-prices {genai_prices.__version__}"

_REGISTRY = UnitRegistry(unit_data)
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_PAST = -(2**62)
FAR_FUTURE = 2**62

# genai-prices usage keys tokenomy's Usage can fill, as leaf vectors over its counters.
# Every other unit (images, video, web searches, audio hours, ...) is never reported by our
# metering, so it counts zero, as it would in a genai-prices Usage that omits it.
_FIVE_MINUTE_WRITES: Vector = (0, 0, 1, -1, 0, 0, 0, 0)
USAGE_VECTORS: dict[str, Vector] = {
    "input_tokens": unit_vector(INPUT),
    "cache_read_tokens": unit_vector(CACHED),
    "cache_write_tokens": unit_vector(CACHE_WRITE),
    "cache_write_1h_tokens": unit_vector(CACHE_WRITE_1H),
    # Anthropic has two cache TTLs; whatever is not the 1-hour part is the 5-minute part.
    "cache_write_5m_tokens": _FIVE_MINUTE_WRITES,
    "input_audio_tokens": unit_vector(AUDIO_IN),
    "output_tokens": unit_vector(OUTPUT),
    "output_reasoning_tokens": unit_vector(REASONING),
    "output_audio_tokens": unit_vector(AUDIO_OUT),
}
_TOKEN_KEYS = frozenset(USAGE_VECTORS)

PriceContextKey = tuple[tuple[str, str], ...]


def ms_to_datetime(ts_ms: int) -> datetime:
    """Exact UTC datetime for Unix epoch milliseconds (no float division)."""
    return _EPOCH + timedelta(milliseconds=ts_ms)


def snapshot() -> data_snapshot.DataSnapshot:
    """The pinned catalog shipped inside the genai-prices wheel."""
    return data_snapshot.get_snapshot()


# -- provider and model resolution ---------------------------------------------------------


def infer_catalog_provider(
    snap: data_snapshot.DataSnapshot, provider: Provider
) -> tuple[types.Provider | None, str]:
    """Find the genai-prices provider that prices a configured provider.

    Order: ``catalog_provider`` from the config; ``kind = "anthropic"`` (Anthropic's wire
    format is only spoken by Anthropic); genai-prices' API-URL patterns against ``base_url``;
    the provider's name (genai-prices' id and provider-match rules). When all of those miss,
    ``(None, "")`` lets genai-prices find the provider from the model id.

    Returns:
        The catalog provider (or ``None``) and, when ``catalog_provider`` names no catalog
        provider, a problem message.
    """
    if provider.catalog_provider:
        found = data_snapshot.find_provider_by_id(snap.providers, provider.catalog_provider)
        if found is None:
            return None, (
                f"catalog_provider {provider.catalog_provider!r} of provider"
                f" {provider.name!r} is not in the {CATALOG_VERSION} catalog"
            )
        return found, ""
    wire = WIRES.get(provider.kind)  # None: the built-in simulated factory
    vendor = wire.sole_vendor if wire is not None else None
    if vendor:
        return data_snapshot.find_provider_by_id(snap.providers, vendor), ""
    for candidate in snap.providers:
        if re.match(candidate.api_pattern, provider.base_url):
            return candidate, ""
    return data_snapshot.find_provider_by_id(snap.providers, provider.name), ""


def find_model(
    snap: data_snapshot.DataSnapshot, catalog_provider: types.Provider | None, model_ref: str
) -> tuple[types.Provider, types.ModelInfo]:
    """Match ``model_ref`` in the catalog (raises ``LookupError`` when unknown)."""
    return snap.find_provider_model(model_ref, catalog_provider, None, None)


# -- validity windows ----------------------------------------------------------------------


def _date_ms(d: date) -> int:
    return (d - date(1970, 1, 1)).days * _DAY_MS


def _time_of_day_ms(t: time) -> int:
    # Naive constraint times are UTC (as in genai-prices); aware ones are converted to UTC.
    if t.tzinfo is not None:
        t = datetime.combine(date(1970, 1, 1), t).astimezone(UTC).time()
    us = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
    return -(-us // 1000)  # first whole millisecond at or after the boundary


def validity_window(model: types.ModelInfo, ts_ms: int, with_variants: bool) -> tuple[int, int]:
    """``[lo, hi)`` in epoch ms around ``ts_ms`` in which the model's price selection is constant.

    Start-date constraints flip at UTC midnight of their date; time-of-day constraints flip
    at their start and end times every UTC day. Between two such instants genai-prices picks
    the same price, so a compiled rate card can be reused for the whole window.
    """
    constraints: list[object] = []
    if not isinstance(model.prices, types.ModelPrice):
        constraints.extend(cp.constraint for cp in model.prices if cp.constraint is not None)
    if with_variants:
        constraints.extend(v.constraint for v in model.price_variants or () if v.constraint)
    lo, hi = FAR_PAST, FAR_FUTURE
    bounds: list[int] = []
    day = ts_ms - ts_ms % _DAY_MS
    for c in constraints:
        if isinstance(c, types.StartDateConstraint):
            bounds.append(_date_ms(c.start_date))
        elif isinstance(c, types.TimeOfDateConstraint):
            bounds.extend(
                (
                    day,
                    day + _DAY_MS,
                    day + _time_of_day_ms(c.start_time),
                    day + _time_of_day_ms(c.end_time),
                )
            )
        else:  # a constraint kind this code does not know: never reuse across instants
            bounds.extend((ts_ms, ts_ms + 1))
    for b in bounds:
        if b <= ts_ms:
            lo = max(lo, b)
        else:
            hi = min(hi, b)
    return lo, hi


# -- compiling a ModelPrice -----------------------------------------------------------------


Steps = tuple[Decimal, tuple[tuple[int, Decimal], ...]]


def _price_steps(value: Decimal | types.TieredPrices) -> Steps:
    if isinstance(value, types.TieredPrices):
        return value.base, tuple((t.start, t.price) for t in value.tiers)
    return value, ()


def compile_model_price(model_price: types.ModelPrice, source: str) -> RateCard:
    """Compile a genai-prices ``ModelPrice`` into a rate card with genai-prices' semantics.

    Leaves follow ``genai_prices.decompose.compute_leaf_values``: priced units ordered from
    most to least specific, each one's leaf is its count minus its priced descendants' leaves.
    """
    priced: list[tuple[UnitDef, Decimal | types.TieredPrices]] = []
    unknown: list[str] = []
    for key, value in model_price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        try:
            priced.append((_REGISTRY.unit_for_price_key(key), value))
        except KeyError:
            unknown.append(key)  # genai-prices ignores these too (with a warning)
    units = [unit for unit, _ in priced]
    if not units and not unknown:
        # genai-prices prices such entries at 0: OpenRouter's ":free" models, Copilot models
        # included in the subscription, Gemma on the Gemini API. Free, but say so.
        return RateCard(source, (), note="the catalog lists no prices for this model (free)")
    try:
        validate_priced_units(units, _REGISTRY)
    except ValueError as exc:
        return RateCard(source, (), problem=f"catalog price is invalid ({exc})")
    if not any(unit.usage_key in _TOKEN_KEYS for unit in units):
        keys = ", ".join(sorted(unit.price_key for unit in units) + unknown) or "none"
        return RateCard(source, (), problem=f"catalog has no token prices (only: {keys})")

    token_units = sorted(
        (u for u in units if u.usage_key != "requests"),
        key=lambda u: (-len(u.dimensions), u.usage_key),
    )
    leaves: dict[str, list[int]] = {}
    for unit in token_units:
        leaf = list(USAGE_VECTORS.get(unit.usage_key, ZERO))
        for other in token_units:
            if other is not unit and is_descendant_or_self(unit, other):
                leaf = [a - b for a, b in zip(leaf, leaves[other.usage_key], strict=True)]
        leaves[unit.usage_key] = leaf

    buckets: list[Bucket] = []
    for unit, value in priced:
        base, tiers = _price_steps(value)
        if unit.usage_key == "requests":
            buckets.append(Bucket("requests", None, "", base, tiers, unit.per))
            continue
        leaf = leaves[unit.usage_key]
        if any(leaf):  # an all-zero leaf is a unit our usage never reports: it costs 0
            v = (leaf[0], leaf[1], leaf[2], leaf[3], leaf[4], leaf[5], leaf[6], leaf[7])
            buckets.append(
                Bucket(
                    unit.usage_key, v, unit.dimensions.get("direction", ""), base, tiers, unit.per
                )
            )
    return RateCard(source, buckets)


# -- one catalog model with its cached rate cards --------------------------------------------


class CatalogModel:
    """A catalog model resolved for one deployment, with its rate card cached per window."""

    __slots__ = (
        "_cards",
        "_context_slots",
        "_hi",
        "_lo",
        "_now_card",
        "_own_model",
        "model",
        "provider",
        "source",
    )

    _MAX_CARDS = 256

    def __init__(self, provider: types.Provider, model: types.ModelInfo) -> None:
        self.provider = provider
        self.model = model
        self.source = f"{CATALOG_VERSION}:{provider.id}/{model.id}"
        # genai-prices applies price variants only to a provider's own models, not to ones
        # borrowed through fallback_model_providers.
        self._own_model = any(m is model for m in provider.models)
        self._lo = 0
        self._hi = 0  # empty window: the first call compiles
        self._now_card: RateCard | None = None
        self._cards: dict[tuple[PriceContextKey | None, int], tuple[int, RateCard]] = {}
        # The window last used per price context (flex, batch, ...), like _lo/_hi/_now_card.
        self._context_slots: dict[PriceContextKey, tuple[int, int, RateCard]] = {}

    def card_at(self, ts_ms: int, context: Mapping[str, str] | None = None) -> RateCard:
        """The rate card in force at ``ts_ms`` (fast when ``ts_ms`` is in the last window)."""
        if not context:
            if self._lo <= ts_ms < self._hi:
                card = self._now_card
                if card is not None:
                    return card
            lo, hi, card = self._load(ts_ms, None, None)
            self._lo, self._hi, self._now_card = lo, hi, card
            return card
        key = tuple(sorted(context.items()))
        slot = self._context_slots.get(key)
        if slot is not None and slot[0] <= ts_ms < slot[1]:
            return slot[2]
        slot = self._load(ts_ms, key, context)
        if len(self._context_slots) >= self._MAX_CARDS:
            self._context_slots.clear()  # contexts come from responses: stay bounded
        self._context_slots[key] = slot
        return slot[2]

    def _load(
        self, ts_ms: int, key: PriceContextKey | None, context: Mapping[str, str] | None
    ) -> tuple[int, int, RateCard]:
        use_variants = bool(context) and self._own_model
        lo, hi = validity_window(self.model, ts_ms, use_variants)
        cached = self._cards.get((key, lo))
        if cached is not None and ts_ms < cached[0]:
            return lo, hi, cached[1]
        when = ms_to_datetime(ts_ms)
        source = self.source
        if use_variants and context:
            model_price = self.model.get_prices(when, context)
            applied = sorted(
                {
                    item
                    for v in self.model.price_variants or ()
                    if (v.constraint is None or v.constraint.active(when))
                    and all(context.get(k) == val for k, val in v.when.items())
                    for item in v.when.items()
                }
            )
            if applied:
                source += "[" + ",".join(f"{k}={val}" for k, val in applied) + "]"
        else:
            model_price = self.model.get_prices(when)
        card = compile_model_price(model_price, source)
        if len(self._cards) >= self._MAX_CARDS:
            self._cards.clear()  # re-pricing history can touch many windows; stay bounded
        self._cards[(key, lo)] = (hi, card)
        return lo, hi, card
