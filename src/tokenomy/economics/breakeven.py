"""Cloud API versus a local box: fixed cost, break-even volume, payback.

Model (monthly; a month is 730 hours, 8,760 / 12):

    fixed_cost_per_month  = factory cost per hour x 730     (chips + electricity + ops)
    capacity_mtok         = throughput x mix factor x gpus x 3600 x 730 / 1e6   (100% busy)
    local_cost_per_mtok   = fixed_cost_per_month / (capacity_mtok x utilization)
    breakeven_mtok        = fixed_cost_per_month / api_price       (cloud bill = local cost)
    breakeven_utilization = breakeven_mtok / capacity_mtok
    payback_months        = upfront capex / (cloud bill avoided - electricity - ops)

The box draws its average power whether busy or not (power is a fixed cost here). Demand
beyond the box's capacity stays on the cloud API in both cases. The mix factor converts
the throughput measured at the profile's ``throughput_input_share`` to the demand's input share,
since an input (prefill) token costs ``input_cost_ratio`` of an output token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokenomy.economics.decimals import HOURS_PER_MONTH, MILLION, SECONDS_PER_HOUR, out
from tokenomy.economics.factory import factory_cost, mix_capacity_factor
from tokenomy.economics.profiles import FactoryProfile


@dataclass(frozen=True, slots=True)
class ApiPrice:
    """A cloud API's blended price for a given input share."""

    blended_per_mtok: Decimal
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    input_share: Decimal | None
    source: str


def blended_api_price(
    input_per_mtok: Decimal, output_per_mtok: Decimal, input_share: Decimal, source: str
) -> ApiPrice:
    """``share x input + (1 - share) x output`` USD per Mtok."""
    if not Decimal(0) <= input_share <= Decimal(1):
        raise ValueError(f"input_share: must be between 0 and 1 (got {input_share})")
    blended = input_share * input_per_mtok + (1 - input_share) * output_per_mtok
    return ApiPrice(blended, input_per_mtok, output_per_mtok, input_share, source)


def catalog_api_price(model: str, input_share: Decimal) -> ApiPrice:
    """Blend a model's list prices from the genai-prices catalog.

    ``model`` is ``MODEL`` or ``PROVIDER/MODEL`` (e.g. ``openai/gpt-4o``). Cache-read and
    long-context tier prices are not used: the blend is of the base input and output prices.
    """
    from genai_prices import Usage, calc_price  # imported lazily: loads the price data

    provider, _, name = model.rpartition("/")
    # Price a small request and scale it: a 1-Mtok request would land in long-context
    # tiers (e.g. Anthropic's >200k-token prices), which agents' typical calls do not.
    probe = 1_000
    try:
        inp = calc_price(
            Usage(input_tokens=probe, output_tokens=0), name, provider_id=provider or None
        )
        outp = calc_price(
            Usage(input_tokens=0, output_tokens=probe), name, provider_id=provider or None
        )
    except LookupError as exc:
        raise ValueError(
            f"api_model: {model!r} is not in the genai-prices catalog ({exc})"
        ) from exc
    source = f"genai-prices: {inp.provider.id}/{inp.model.id}"
    scale = MILLION / probe
    return blended_api_price(
        Decimal(inp.total_price) * scale, Decimal(outp.total_price) * scale, input_share, source
    )


@dataclass(frozen=True, slots=True)
class MonthlyDemand:
    """Monthly demand and its input share (e.g. from the last 30 days of the ledger)."""

    mtok_per_month: Decimal
    input_share: Decimal
    source: str
    days: int = 30


def demand_from_rows(
    rows: Iterable[Mapping[str, Any]], days: int = 30, source: str = "ledger"
) -> MonthlyDemand:
    """Scale ledger totals over ``days`` to a 30.4-day month (730 h) and take their mix."""
    materialized = list(rows)
    inp = sum(int(r.get("input_tokens", 0)) for r in materialized)
    outp = sum(int(r.get("output_tokens", 0)) for r in materialized)
    total = Decimal(inp + outp)
    if days <= 0:
        raise ValueError(f"days: must be > 0 (got {days})")
    per_month = total / MILLION * (HOURS_PER_MONTH / (Decimal(days) * 24))
    share = Decimal(inp) / total if total else Decimal("0.5")
    return MonthlyDemand(per_month, share, source, days)


@dataclass(frozen=True, slots=True)
class BreakevenResult:
    """Local box versus cloud API for one profile, price and (optional) demand."""

    api: ApiPrice
    profile: FactoryProfile
    input_share: Decimal
    fixed_cost_per_month: Decimal
    running_cost_per_month: Decimal  # electricity + ops: the cash a box costs once bought
    upfront_capex: Decimal
    capacity_mtok_per_month: Decimal
    local_cost_per_mtok: Decimal
    breakeven_mtok_per_month: Decimal | None
    breakeven_utilization: Decimal | None
    demand: MonthlyDemand | None
    demand_utilization: Decimal | None
    cloud_cost_per_month: Decimal | None
    local_cost_per_month: Decimal | None
    savings_per_month: Decimal | None
    payback_months: Decimal | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (10 significant digits) with every assumption."""
        assumptions: list[dict[str, Any]] = [
            {
                "name": "api_price_per_mtok",
                "value": self.api.blended_per_mtok,
                "unit": "USD/Mtok blended",
                "source": self.api.source,
            },
            {
                "name": "input_share",
                "value": self.input_share,
                "unit": "fraction",
                "source": self.demand.source if self.demand else "input",
            },
        ]
        if self.api.input_per_mtok is not None:
            assumptions.insert(
                1,
                {
                    "name": "api_input_per_mtok",
                    "value": self.api.input_per_mtok,
                    "unit": "USD/Mtok",
                    "source": self.api.source,
                },
            )
            assumptions.insert(
                2,
                {
                    "name": "api_output_per_mtok",
                    "value": self.api.output_per_mtok,
                    "unit": "USD/Mtok",
                    "source": self.api.source,
                },
            )
        if self.demand is not None:
            assumptions.append(
                {
                    "name": "demand_mtok_per_month",
                    "value": out(self.demand.mtok_per_month),
                    "unit": "Mtok/month",
                    "source": self.demand.source,
                }
            )
        return {
            "api_price_per_mtok": out(self.api.blended_per_mtok),
            "fixed_cost_per_month": out(self.fixed_cost_per_month),
            "running_cost_per_month": out(self.running_cost_per_month),
            "upfront_capex": out(self.upfront_capex),
            "capacity_mtok_per_month": out(self.capacity_mtok_per_month),
            "utilization": out(self.profile.utilization),
            "local_cost_per_mtok": out(self.local_cost_per_mtok),
            "breakeven_mtok_per_month": out(self.breakeven_mtok_per_month),
            "breakeven_utilization": out(self.breakeven_utilization),
            "demand_mtok_per_month": out(self.demand.mtok_per_month) if self.demand else None,
            "demand_utilization": out(self.demand_utilization),
            "cloud_cost_per_month": out(self.cloud_cost_per_month),
            "local_cost_per_month": out(self.local_cost_per_month),
            "savings_per_month": out(self.savings_per_month),
            "payback_months": out(self.payback_months),
            "assumptions": [*assumptions, *self.profile.assumptions()],
            "notes": list(self.notes),
        }


def breakeven(
    profile: FactoryProfile,
    api: ApiPrice,
    demand: MonthlyDemand | None = None,
    input_share: Decimal | None = None,
) -> BreakevenResult:
    """Compare a local factory profile with a cloud API price.

    Args:
        profile: the local box (``throughput`` required; ``gpus`` boxes/GPUs).
        api: the cloud price (blended at the same input share as the demand).
        demand: monthly demand; without it, payback and savings are not computed.
        input_share: the workload's input share (default: the demand's, else the API
            blend's, else the profile's measurement share).
    """
    if profile.throughput is None:
        raise ValueError("throughput: required (tokens/s per GPU) to know the box's capacity")
    if api.blended_per_mtok <= 0:
        raise ValueError(f"api_price: must be > 0 (got {api.blended_per_mtok})")
    share = input_share
    if share is None and demand is not None:
        share = demand.input_share
    if share is None:
        share = api.input_share if api.input_share is not None else profile.throughput_input_share
    cost = factory_cost(profile)
    gpus = Decimal(profile.gpus)
    fixed = cost.cost_per_hour * HOURS_PER_MONTH
    running = (cost.electricity_per_hour + cost.ops_per_hour) * HOURS_PER_MONTH
    upfront = (profile.capex or Decimal(0)) * gpus if profile.rent_per_hour is None else Decimal(0)
    tokens_per_s = profile.throughput * mix_capacity_factor(profile, share) * gpus
    capacity = tokens_per_s * SECONDS_PER_HOUR * HOURS_PER_MONTH / MILLION
    local_per_mtok = fixed / (capacity * profile.utilization)
    be_mtok = fixed / api.blended_per_mtok
    be_util = be_mtok / capacity
    notes: list[str] = []
    if be_util > 1:
        notes.append(
            f"break-even needs {be_util:.2f}x this factory's capacity: at this API "
            "price it never pays for itself, however busy it is"
        )
    demand_util = cloud = local = savings = payback = None
    if demand is not None:
        served = min(demand.mtok_per_month, capacity)
        overflow = demand.mtok_per_month - served
        demand_util = demand.mtok_per_month / capacity
        cloud = demand.mtok_per_month * api.blended_per_mtok
        local = fixed + overflow * api.blended_per_mtok
        savings = cloud - local
        cash_savings = served * api.blended_per_mtok - running
        if overflow > 0:
            notes.append(
                f"demand exceeds capacity by {out(overflow, 6)} Mtok/month; "
                "the overflow stays on the cloud API"
            )
        if upfront == 0:
            notes.append(
                "no upfront capital (rented): payback does not apply; compare monthly costs"
            )
        elif cash_savings <= 0:
            notes.append(
                "the box never pays back at this demand: the cloud bill it avoids "
                "does not cover its electricity and operations"
            )
        else:
            payback = upfront / cash_savings
    return BreakevenResult(
        api,
        profile,
        share,
        fixed,
        running,
        upfront,
        capacity,
        local_per_mtok,
        be_mtok,
        be_util,
        demand,
        demand_util,
        cloud,
        local,
        savings,
        payback,
        notes,
    )
