"""Rate cards: one resolved price compiled to integer arithmetic for the hot path.

A price (a catalog model price in one validity window, a custom price, a factory cost) is a
set of *buckets*. Each bucket prices a disjoint slice of a request's usage (its *leaf*), written
as a linear combination of the eight :class:`~tokenomy.events.Usage` counters: uncached input is
``input - cached - cache_write``, 5-minute cache writes are ``cache_write - cache_write_1h``,
and so on. Compiling turns every Decimal rate into an integer number of ``1/scale`` nano-USD
per token, so that pricing a request is a handful of integer multiply-adds followed by one
banker's rounding to whole nano-USD — exactly what Decimal arithmetic followed by
:func:`tokenomy.money.usd_to_nanos` gives, without allocating a single Decimal.

Context tiers ("all tokens cost more once the prompt exceeds 200k") select a *band* by the
request's total input tokens; every band has its own integer rates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from tokenomy.events import Usage
from tokenomy.money import MTOK, NANOS_PER_USD

# Positions of the Usage counters in a leaf vector.
INPUT, CACHED, CACHE_WRITE, CACHE_WRITE_1H, OUTPUT, REASONING, AUDIO_IN, AUDIO_OUT = range(8)
FIELD_NAMES = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)
Vector = tuple[int, int, int, int, int, int, int, int]
ZERO: Vector = (0, 0, 0, 0, 0, 0, 0, 0)


def unit_vector(index: int) -> Vector:
    """The leaf vector selecting one Usage counter."""
    v = [0] * 8
    v[index] = 1
    return (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])


@dataclass(frozen=True, slots=True)
class Bucket:
    """One priced slice of usage.

    Attributes:
        name: Human name used in messages (``"input"``, ``"cache_write_1h_tokens"``, ...).
        vector: Leaf as coefficients over the Usage counters; ``None`` for a per-request fee.
        direction: ``"input"``, ``"output"`` or ``""`` (per-request fees).
        base: USD per ``per`` units below every tier.
        tiers: ``(start, price)`` pairs: the price applies when total input tokens > start.
        per: Units the price is quoted for (1,000,000 tokens; 1,000 requests).
    """

    name: str
    vector: Vector | None
    direction: str
    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()
    per: int = MTOK


def usage_problem(u: Usage) -> str:
    """Why ``u`` breaks tokenomy's usage convention, or ``""`` when it does not."""
    for name in FIELD_NAMES:
        if getattr(u, name) < 0:
            return f"{name} is negative ({getattr(u, name)})"
    if u.cached_tokens + u.cache_write_tokens > u.input_tokens:
        return (
            f"cached_tokens ({u.cached_tokens}) + cache_write_tokens ({u.cache_write_tokens})"
            f" exceed input_tokens ({u.input_tokens})"
        )
    if u.cache_write_1h_tokens > u.cache_write_tokens:
        return (
            f"cache_write_1h_tokens ({u.cache_write_1h_tokens}) exceed cache_write_tokens"
            f" ({u.cache_write_tokens})"
        )
    if u.audio_input_tokens > u.input_tokens:
        return f"audio_input_tokens ({u.audio_input_tokens}) exceed input_tokens ({u.input_tokens})"
    if u.reasoning_tokens > u.output_tokens:
        return f"reasoning_tokens ({u.reasoning_tokens}) exceed output_tokens ({u.output_tokens})"
    if u.audio_output_tokens > u.output_tokens:
        return (
            f"audio_output_tokens ({u.audio_output_tokens}) exceed output_tokens"
            f" ({u.output_tokens})"
        )
    return ""


def _half_even_div(total: int, scale: int) -> int:
    q, r = divmod(total, scale)
    twice = 2 * r
    if twice > scale or (twice == scale and q & 1):
        q += 1
    return q


class RateCard:
    """A compiled price: integer rates per band, ready for :meth:`nanos`.

    Attributes:
        source: Which price this is, recorded on every usage event.
        problem: Non-empty when the price cannot be used (e.g. it has no token prices);
            :meth:`nanos` must not be called then.
        note: Non-empty when the price is usable but worth a warning (a catalog entry
            without any price, i.e. free).
    """

    __slots__ = (
        "_bands",
        "_fixed",
        "_leaves",
        "_max_fixed",
        "_max_in",
        "_max_out",
        "_names",
        "_scale",
        "_starts",
        "note",
        "problem",
        "source",
    )

    def __init__(
        self, source: str, buckets: Sequence[Bucket], problem: str = "", note: str = ""
    ) -> None:
        self.source = source
        self.problem = problem
        self.note = note
        starts = sorted({start for b in buckets for start, _ in b.tiers})
        band_count = len(starts) + 1

        # Exact nano-USD per unit for every bucket in every band.
        per_band: list[list[Decimal]] = []
        with localcontext() as ctx:
            ctx.prec = 60  # wide enough that no product or quotient here is ever rounded
            for b in buckets:
                row: list[Decimal] = []
                for k in range(band_count):
                    price = b.base
                    for start, tier_price in sorted(b.tiers):
                        # Band k holds input totals in (starts[k-1], starts[k]].
                        if k > 0 and start <= starts[k - 1]:
                            price = tier_price
                    if not price.is_finite() or price < 0:
                        raise ValueError(f"{source}: {b.name} price must be >= 0, got {price}")
                    nanos = price * NANOS_PER_USD / b.per
                    if nanos * b.per != price * NANOS_PER_USD:
                        raise ValueError(f"price {price} per {b.per} is not a finite decimal")
                    row.append(nanos)
                per_band.append(row)
        exponents = [-int(x.normalize().as_tuple().exponent) for row in per_band for x in row]
        digits = max([0, *exponents])
        self._scale: int = 10**digits
        ints = [[int(x.scaleb(digits)) for x in row] for row in per_band]

        self._starts = tuple(starts)
        leaves: list[tuple[tuple[int, int], ...]] = []
        names: list[str] = []
        leaf_rows: list[int] = []
        for j, b in enumerate(buckets):
            if b.vector is not None:
                leaves.append(tuple((i, c) for i, c in enumerate(b.vector) if c))
                names.append(b.name)
                leaf_rows.append(j)
        self._leaves = tuple(leaves)
        self._names = tuple(names)
        self._bands = tuple(tuple(ints[j][k] for j in leaf_rows) for k in range(band_count))
        self._fixed = tuple(
            sum(ints[j][k] for j, b in enumerate(buckets) if b.vector is None)
            for k in range(band_count)
        )

        # Worst case per band, made monotone so any input count up to a band is covered.
        max_in: list[int] = []
        max_out: list[int] = []
        max_fixed: list[int] = []
        for k in range(band_count):
            ins = [
                ints[j][k]
                for j, b in enumerate(buckets)
                if b.vector is not None and b.direction == "input"
            ]
            outs = [
                ints[j][k]
                for j, b in enumerate(buckets)
                if b.vector is not None and b.direction == "output"
            ]
            max_in.append(max([*ins, *max_in[-1:], 0]))
            max_out.append(max([*outs, *max_out[-1:], 0]))
            max_fixed.append(max([self._fixed[k], *max_fixed[-1:]]))
        self._max_in = tuple(max_in)
        self._max_out = tuple(max_out)
        self._max_fixed = tuple(max_fixed)

    def nanos(self, u: Usage) -> int | None:
        """Cost of ``u`` in whole nano-USD, or ``None`` when ``u`` is inconsistent.

        This is the hot path: attribute reads and integer arithmetic only.
        """
        total = self._scaled_total(u)
        if total is None:
            return None
        scale = self._scale
        return total if scale == 1 else _half_even_div(total, scale)

    def exact_usd(self, u: Usage) -> Decimal | None:
        """Cost of ``u`` in USD before rounding to nano-USD (for showing rates exactly)."""
        total = self._scaled_total(u)
        if total is None:
            return None
        with localcontext() as ctx:
            ctx.prec = 60
            return Decimal(total) / self._scale / NANOS_PER_USD

    def _scaled_total(self, u: Usage) -> int | None:
        """Cost of ``u`` in ``1/scale`` nano-USD (exact), or ``None`` when inconsistent."""
        i = u.input_tokens
        c = u.cached_tokens
        w = u.cache_write_tokens
        w1 = u.cache_write_1h_tokens
        o = u.output_tokens
        r = u.reasoning_tokens
        ai = u.audio_input_tokens
        ao = u.audio_output_tokens
        if (
            c < 0
            or w1 < 0
            or r < 0
            or ai < 0
            or ao < 0
            or c + w > i
            or w1 > w
            or r > o
            or ao > o
            or ai > i
        ):
            return None
        v = (i, c, w, w1, o, r, ai, ao)
        k = bisect_left(self._starts, i) if self._starts else 0
        total = self._fixed[k]
        for terms, rate in zip(self._leaves, self._bands[k], strict=True):
            leaf = 0
            for index, coef in terms:
                leaf += coef * v[index]
            if leaf < 0:
                return None
            total += leaf * rate
        return total

    def leaf_problem(self, u: Usage) -> str:
        """Explain why :meth:`nanos` returned ``None`` for ``u`` (slow path, for messages)."""
        if problem := usage_problem(u):
            return problem
        v = tuple(getattr(u, name) for name in FIELD_NAMES)
        for name, terms in zip(self._names, self._leaves, strict=True):
            leaf = sum(coef * v[index] for index, coef in terms)
            if leaf < 0:
                parts = " ".join(
                    f"{'+' if coef > 0 else '-'} {FIELD_NAMES[index]}" for index, coef in terms
                )
                return (
                    f"{name} would be negative ({leaf} = {parts.lstrip('+ ')}); the usage"
                    " cannot say which audio tokens were cached"
                )
        return ""

    def max_nanos(self, input_tokens: int, max_output_tokens: int) -> int:
        """Upper bound (rounded up) for any consistent usage within the given token counts."""
        k = bisect_left(self._starts, input_tokens) if self._starts else 0
        total = (
            max(input_tokens, 0) * self._max_in[k]
            + max(max_output_tokens, 0) * self._max_out[k]
            + self._max_fixed[k]
        )
        return -(-total // self._scale)
