"""The token-factory cost model: what a token costs to make on your own hardware.

    capex_per_hour       = capex x CRF(r, n) / 8760   (straight line at r = 0: capex / (n x 8760))
    electricity_per_hour = power_kw x avg_draw x PUE x $/kWh   (0 when a rent includes power)
    ops_per_hour         = ops_per_year / 8760
    $/Mtok               = cost_per_hour / (tokens_per_s x 3600 x utilization / 1e6)
    tokens/s per MW      = tokens_per_s x 1000 / all_in_kw    J/token = all_in_W / tokens_per_s

Energy metrics describe the machine while it serves (as InferenceX reports them); $/Mtok
spreads every hour's cost, idle hours included, over the tokens actually made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy.economics.catalog import Catalog
from tokenomy.economics.decimals import (
    HOURS_PER_MONTH,
    HOURS_PER_YEAR,
    MILLION,
    SECONDS_PER_HOUR,
    out,
    sig,
)
from tokenomy.economics.profiles import FactoryProfile, profile_from_table


def crf(rate: Decimal, years: Decimal) -> Decimal:
    """Capital recovery factor: the level annual payment that repays 1 over ``years`` at ``rate``.

    ``r (1+r)^n / ((1+r)^n - 1)``; at ``rate == 0`` it is ``1 / n`` (straight line).
    """
    if years <= 0:
        raise ValueError(f"life_years: must be > 0 (got {years})")
    if rate == 0:
        return 1 / years
    growth = (1 + rate) ** years
    return rate * growth / (growth - 1)


@dataclass(frozen=True, slots=True)
class FactoryCost:
    """The cost of one factory (``profile.gpus`` GPUs); per-token fields need a throughput."""

    profile: FactoryProfile
    capex_per_hour: Decimal
    electricity_per_hour: Decimal
    ops_per_hour: Decimal
    cost_per_hour: Decimal
    all_in_kw: Decimal  # per GPU
    tokens_per_hour: Decimal | None
    cost_per_mtok: Decimal | None
    input_cost_per_mtok: Decimal | None
    output_cost_per_mtok: Decimal | None
    tokens_per_s_per_mw: Decimal | None
    joules_per_token: Decimal | None
    kwh_per_mtok: Decimal | None
    electricity_share_total: Decimal | None
    electricity_share_opex: Decimal | None

    @property
    def cost_per_gpu_hour(self) -> Decimal:
        """All-in hourly cost of one GPU (chips + electricity + operations)."""
        return self.cost_per_hour / self.profile.gpus

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (10 significant digits) with every assumption."""
        p = self.profile
        return {
            "profile": p.name,
            "gpus": p.gpus,
            "cost_per_hour": out(self.cost_per_hour),
            "capex_per_hour": out(self.capex_per_hour),
            "electricity_per_hour": out(self.electricity_per_hour),
            "ops_per_hour": out(self.ops_per_hour),
            "cost_per_gpu_hour": out(self.cost_per_gpu_hour),
            "cost_per_mtok": out(self.cost_per_mtok),
            "input_cost_per_mtok": out(self.input_cost_per_mtok),
            "output_cost_per_mtok": out(self.output_cost_per_mtok),
            "tokens_per_s_per_mw": out(self.tokens_per_s_per_mw),
            "joules_per_token": out(self.joules_per_token),
            "kwh_per_mtok": out(self.kwh_per_mtok),
            "all_in_kw_per_gpu": out(self.all_in_kw),
            "electricity_share_total": out(self.electricity_share_total),
            "electricity_share_opex": out(self.electricity_share_opex),
            "reference_tco_per_gpu_hour": out(p.reference_tco_per_hour),
            "assumptions": p.assumptions(),
        }


def factory_cost(profile: FactoryProfile) -> FactoryCost:
    """Cost per hour (chips, electricity, operations), per token and per joule of a profile."""
    p = profile
    gpus = Decimal(p.gpus)
    if p.rent_per_hour is not None:
        chips = p.rent_per_hour
    elif p.capex is not None:
        chips = p.capex * crf(p.cost_of_capital, p.life_years) / HOURS_PER_YEAR
    else:
        chips = Decimal(0)
    all_in_kw = p.all_in_kw
    paid_power = p.rent_per_hour is not None and p.rent_includes_power
    electricity = Decimal(0) if paid_power else all_in_kw * p.electricity
    ops = p.ops_per_year / HOURS_PER_YEAR
    total = (chips + electricity + ops) * gpus
    opex = electricity + ops
    share_total = electricity / (chips + opex) if chips + opex > 0 else None
    share_opex = electricity / opex if opex > 0 else None

    tokens_per_hour = cost_per_mtok = in_mtok = out_mtok = None
    per_mw = joules = kwh = None
    if p.throughput is not None:
        tokens_per_hour = p.throughput * SECONDS_PER_HOUR * p.utilization * gpus
        cost_per_mtok = total / (tokens_per_hour / MILLION)
        in_mtok, out_mtok = split_input_output(
            cost_per_mtok, p.input_cost_ratio, p.throughput_input_share
        )
        if all_in_kw > 0:
            per_mw = p.throughput * 1000 / all_in_kw
            joules = all_in_kw * 1000 / p.throughput
            kwh = joules * MILLION / (SECONDS_PER_HOUR * 1000)
    return FactoryCost(
        p,
        chips * gpus,
        electricity * gpus,
        ops * gpus,
        total,
        all_in_kw,
        tokens_per_hour,
        cost_per_mtok,
        in_mtok,
        out_mtok,
        per_mw,
        joules,
        kwh,
        share_total,
        share_opex,
    )


def split_input_output(
    blended: Decimal, input_cost_ratio: Decimal, input_share: Decimal
) -> tuple[Decimal, Decimal]:
    """Input and output $/Mtok whose mix at ``input_share`` averages to ``blended``.

    An input (prefill) token costs ``input_cost_ratio`` output tokens, so
    ``output = blended / (share x ratio + 1 - share)`` and ``input = ratio x output``.
    """
    weight = input_share * input_cost_ratio + (1 - input_share)
    output = blended / weight
    return input_cost_ratio * output, output


def mix_capacity_factor(profile: FactoryProfile, input_share: Decimal) -> Decimal:
    """How many more (or fewer) tokens/s the factory makes at ``input_share`` than measured.

    The factory's capacity is fixed in cost units (one output token = 1, one input token =
    ``input_cost_ratio``); an input-heavy mix therefore yields more tokens per second.
    """
    k = profile.input_cost_ratio
    measured = profile.throughput_input_share * k + (1 - profile.throughput_input_share)
    wanted = input_share * k + (1 - input_share)
    return measured / wanted


@dataclass(frozen=True, slots=True)
class Throughput:
    """The one throughput model of ``plan`` and ``breakeven``: tokens/s per GPU at a mix.

    ``per_gpu = measured x mix_factor`` (see ``mix_capacity_factor``); a fleet makes
    ``per_gpu x gpus x utilization`` tokens/s on average, ``x 3,600 x 730`` a month.
    """

    measured: Decimal  # tokens/s per GPU at the profile's throughput_input_share
    measured_input_share: Decimal
    input_share: Decimal  # of the workload sized
    input_cost_ratio: Decimal
    mix_factor: Decimal
    per_gpu: Decimal  # tokens/s per GPU at the workload's mix, while serving

    def assumptions(self, source: str) -> list[dict[str, Any]]:
        """The derived values, printed among the assumptions."""
        return [
            {
                "name": "workload_input_share",
                "value": sig(self.input_share),
                "unit": "fraction",
                "source": source,
            },
            {
                "name": "mix_factor",
                "value": sig(self.mix_factor),
                "unit": "x measured throughput",
                "source": "derived: (s_m x r + 1 - s_m) / (s x r + 1 - s), "
                "r = input_cost_ratio, s_m = throughput_input_share, s = workload share",
            },
            {
                "name": "throughput_at_mix",
                "value": sig(self.per_gpu),
                "unit": "tokens/s/GPU",
                "source": "derived: throughput x mix_factor",
            },
            {
                "name": "hours_per_month",
                "value": HOURS_PER_MONTH,
                "unit": "h",
                "source": "derived: 8,760 / 12",
            },
        ]


def throughput_at(profile: FactoryProfile, input_share: Decimal | None) -> Throughput:
    """The profile's throughput converted to a workload's input share (None: as measured)."""
    if profile.throughput is None:
        raise ValueError("throughput: required (tokens/s per GPU) to size the workload")
    share = profile.throughput_input_share if input_share is None else input_share
    if not Decimal(0) <= share <= Decimal(1):
        raise ValueError(f"input_share: must be between 0 and 1 (got {share})")
    factor = mix_capacity_factor(profile, share)
    return Throughput(
        profile.throughput,
        profile.throughput_input_share,
        share,
        profile.input_cost_ratio,
        factor,
        profile.throughput * factor,
    )


_NANO_PER_MTOK = Decimal("0.000000001")


def factory_token_prices(
    settings_factories: Mapping[str, Mapping[str, Any]], catalog: Catalog | None = None
) -> dict[str, tuple[Decimal, Decimal]]:
    """Map each ``[factories.NAME]`` to its (input, output) production cost in USD per Mtok.

    This is what the gateway charges for the tokens of a deployment or provider with
    ``factory = "NAME"``. Cached input tokens are input tokens here (a local engine's prefix
    cache makes them cheaper still; we do not guess by how much). Prices are rounded to
    1e-9 USD per Mtok, far below a nano-dollar per request.

    Raises:
        ValueError: a table is invalid (the config loader has normally caught this already).
    """
    prices: dict[str, tuple[Decimal, Decimal]] = {}
    for name, table in settings_factories.items():
        cost = factory_cost(profile_from_table(name, table, catalog=catalog))
        if cost.input_cost_per_mtok is None or cost.output_cost_per_mtok is None:
            raise ValueError(f"throughput: required to price factory {name!r}")
        prices[name] = (
            cost.input_cost_per_mtok.quantize(_NANO_PER_MTOK),
            cost.output_cost_per_mtok.quantize(_NANO_PER_MTOK),
        )
    return prices
