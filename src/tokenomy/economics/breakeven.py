"""Cloud API versus a local box: fixed cost, break-even volume, payback, NPV.

Model (monthly; a month is 730 hours, 8,760 / 12):

    fixed_cost_per_month  = factory cost per hour x 730     (chips + electricity + ops)
    monthly_opex          = the cash part of it: electricity + ops (+ rent when rented)
    capacity_mtok         = throughput_at_mix x gpus x 3600 x 730 / 1e6   (100% busy)
    usable_mtok           = capacity_mtok x utilization   (the most the box is run at)
    local_cost_per_mtok   = fixed_cost_per_month / usable_mtok
    breakeven_mtok        = fixed_cost_per_month / api_price       (cloud bill = local cost)
    breakeven_utilization = breakeven_mtok / capacity_mtok
    served                = min(demand, usable_mtok); the overflow stays on the cloud API
    local_cost_per_mtok_at_demand = fixed_cost_per_month / served
    cash_savings(month t) = served(t) x api_price - monthly_opex
    payback_months        = first t where the cumulative cash savings reach the capex
                            (demand per month from the forecast when given, else flat)
    npv                   = -capex + sum over the life of cash_savings(t) / (1 + m)^t,
                            m = (1 + discount_rate)^(1/12) - 1

``api_price`` is the baseline the box is compared with: by default (``--from-ledger``) the
ledger's effective $/Mtok for the workload (cache discounts and model mix included); a
list price is printed beside it. The box draws its average power whether busy or not.
The throughput is converted to the workload's input share by ``factory.throughput_at``,
the same model ``plan`` uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokenomy.economics.decimals import (
    HOURS_PER_MONTH,
    MILLION,
    SECONDS_PER_HOUR,
    out,
    sig,
)
from tokenomy.economics.factory import Throughput, factory_cost, throughput_at
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
    """Monthly demand and its input share (e.g. from the last 30 days of the ledger).

    ``cost_per_month``: what this demand cost on the cloud, when known (the ledger's
    effective price); ``projection``: Mtok in months 1, 2, ... from the forecast (empty:
    the demand stays flat).
    """

    mtok_per_month: Decimal
    input_share: Decimal
    source: str
    days: int = 30
    cost_per_month: Decimal | None = None
    projection: tuple[Decimal, ...] = ()
    projection_source: str = ""

    @property
    def effective_per_mtok(self) -> Decimal | None:
        """The cloud's effective USD per Mtok of this demand (None: cost unknown)."""
        if self.cost_per_month is None or self.mtok_per_month == 0:
            return None
        return self.cost_per_month / self.mtok_per_month


def demand_from_rows(
    rows: Iterable[Mapping[str, Any]], days: int = 30, source: str = "ledger"
) -> MonthlyDemand:
    """Scale ledger totals over ``days`` to a 30.4-day month (730 h); take mix and cost."""
    materialized = list(rows)
    inp = sum(int(r.get("input_tokens", 0)) for r in materialized)
    outp = sum(int(r.get("output_tokens", 0)) for r in materialized)
    nanos = sum(int(r.get("cost_nanos", 0) or 0) for r in materialized)
    total = Decimal(inp + outp)
    if days <= 0:
        raise ValueError(f"days: must be > 0 (got {days})")
    scale = HOURS_PER_MONTH / (Decimal(days) * 24)
    per_month = total / MILLION * scale
    share = Decimal(inp) / total if total else Decimal("0.5")
    cost = Decimal(nanos) / 10**9 * scale
    return MonthlyDemand(per_month, share, source, days, cost if nanos else None)


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """One cell of the sensitivity grid: a utilization and an API price."""

    utilization: Decimal
    api_price_per_mtok: Decimal
    local_cost_per_mtok: Decimal
    savings_per_month: Decimal
    payback_months: Decimal | None
    npv: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "utilization": out(self.utilization),
            "api_price_per_mtok": out(self.api_price_per_mtok),
            "local_cost_per_mtok": out(self.local_cost_per_mtok),
            "savings_per_month": out(self.savings_per_month),
            "payback_months": out(self.payback_months),
            "npv": out(self.npv),
        }


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
    throughput: Throughput | None = None
    monthly_opex: Decimal = Decimal(0)
    usable_mtok_per_month: Decimal = Decimal(0)
    local_cost_per_mtok_at_demand: Decimal | None = None
    payback_months_flat_demand: Decimal | None = None
    discount_rate: Decimal = Decimal(0)
    life_months: int = 0
    npv: Decimal | None = None
    list_price: ApiPrice | None = None
    sensitivity: list[Sensitivity] = field(default_factory=list)

    @property
    def baseline(self) -> str:
        """``effective`` (the ledger's $/Mtok) or ``list`` (a catalog or given price)."""
        return "effective" if self.api.source.startswith("ledger") else "list"

    def at_list_price(self) -> dict[str, Decimal | None]:
        """Cloud cost and savings had the demand been billed at the list price."""
        if self.list_price is None or self.demand is None:
            return {"cloud_cost_per_month_at_list": None, "savings_per_month_at_list": None}
        price = self.list_price.blended_per_mtok
        served = min(self.demand.mtok_per_month, self.usable_mtok_per_month)
        overflow = self.demand.mtok_per_month - served
        cloud = self.demand.mtok_per_month * price
        return {
            "cloud_cost_per_month_at_list": cloud,
            "savings_per_month_at_list": cloud - (self.fixed_cost_per_month + overflow * price),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (10 significant digits) with every assumption."""
        assumptions: list[dict[str, Any]] = [
            {
                "name": "api_price_per_mtok",
                "value": sig(self.api.blended_per_mtok),
                "unit": "USD/Mtok blended",
                "source": self.api.source,
            },
            {
                "name": "input_share",
                "value": sig(self.input_share),
                "unit": "fraction",
                "source": self.demand.source if self.demand else "input",
            },
            {
                "name": "discount_rate",
                "value": self.discount_rate,
                "unit": "1/year",
                "source": "--discount-rate (default: cost_of_capital)",
            },
            {
                "name": "life_months",
                "value": self.life_months,
                "unit": "months",
                "source": "derived: life_years x 12 (the NPV horizon)",
            },
        ]
        if self.api.input_per_mtok is not None:
            assumptions.insert(
                1,
                {
                    "name": "api_input_per_mtok",
                    "value": sig(self.api.input_per_mtok),
                    "unit": "USD/Mtok",
                    "source": self.api.source,
                },
            )
            assumptions.insert(
                2,
                {
                    "name": "api_output_per_mtok",
                    "value": out(self.api.output_per_mtok),
                    "unit": "USD/Mtok",
                    "source": self.api.source,
                },
            )
        if self.list_price is not None:
            assumptions.append(
                {
                    "name": "list_price_per_mtok",
                    "value": sig(self.list_price.blended_per_mtok),
                    "unit": "USD/Mtok blended",
                    "source": self.list_price.source,
                }
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
            if self.demand.projection:
                assumptions.append(
                    {
                        "name": "demand_projection",
                        "value": f"{len(self.demand.projection)} months",
                        "unit": "",
                        "source": self.demand.projection_source,
                    }
                )
        if self.throughput is not None:
            assumptions += self.throughput.assumptions(
                self.demand.source if self.demand else "input"
            )
        extra = self.at_list_price()
        profile_rows = [a for a in self.profile.assumptions() if a["name"] != "gpus"]
        profile_rows.append(
            {"name": "gpus", "value": self.profile.gpus, "unit": "GPUs", "source": "--gpus"}
        )
        return {
            "baseline": self.baseline,
            "api_price_per_mtok": out(self.api.blended_per_mtok),
            "list_price_per_mtok": out(self.list_price.blended_per_mtok)
            if self.list_price
            else None,
            "fixed_cost_per_month": out(self.fixed_cost_per_month),
            "running_cost_per_month": out(self.running_cost_per_month),
            "monthly_opex": out(self.monthly_opex),
            "upfront_capex": out(self.upfront_capex),
            "capacity_mtok_per_month": out(self.capacity_mtok_per_month),
            "usable_mtok_per_month": out(self.usable_mtok_per_month),
            "utilization": out(self.profile.utilization),
            "local_cost_per_mtok": out(self.local_cost_per_mtok),
            "breakeven_mtok_per_month": out(self.breakeven_mtok_per_month),
            "breakeven_utilization": out(self.breakeven_utilization),
            "demand_mtok_per_month": out(self.demand.mtok_per_month) if self.demand else None,
            "demand_utilization": out(self.demand_utilization),
            "local_cost_per_mtok_at_demand": out(self.local_cost_per_mtok_at_demand),
            "cloud_cost_per_month": out(self.cloud_cost_per_month),
            "local_cost_per_month": out(self.local_cost_per_month),
            "savings_per_month": out(self.savings_per_month),
            "cloud_cost_per_month_at_list": out(extra["cloud_cost_per_month_at_list"]),
            "savings_per_month_at_list": out(extra["savings_per_month_at_list"]),
            "payback_months": out(self.payback_months),
            "payback_months_flat_demand": out(self.payback_months_flat_demand),
            "npv": out(self.npv),
            "sensitivity": [c.to_dict() for c in self.sensitivity],
            "assumptions": [*assumptions, *profile_rows],
            "notes": list(self.notes),
        }


def _monthly_rate(annual: Decimal) -> Decimal:
    return Decimal(1 + annual) ** (Decimal(1) / 12) - 1 if annual else Decimal(0)


def _cash_path(
    path: list[Decimal], usable: Decimal, price: Decimal, opex: Decimal
) -> list[Decimal]:
    return [min(d, usable) * price - opex for d in path]


def _payback(capex: Decimal, cash: list[Decimal]) -> Decimal | None:
    """Months until the cumulative cash savings reach ``capex`` (within the month: linear)."""
    if capex <= 0:
        return None
    total = Decimal(0)
    for t, c in enumerate(cash, start=1):
        if c > 0 and total + c >= capex:
            return Decimal(t - 1) + (capex - total) / c
        total += c
    return None


def _npv(capex: Decimal, cash: list[Decimal], annual_rate: Decimal) -> Decimal:
    m = _monthly_rate(annual_rate)
    value = -capex
    factor = Decimal(1)
    for c in cash:
        factor /= 1 + m
        value += c * factor
    return value


def breakeven(
    profile: FactoryProfile,
    api: ApiPrice,
    demand: MonthlyDemand | None = None,
    input_share: Decimal | None = None,
    *,
    discount_rate: Decimal | None = None,
    list_price: ApiPrice | None = None,
    sensitivity: bool = False,
) -> BreakevenResult:
    """Compare a local factory profile with a cloud API price.

    Args:
        profile: the local box (``throughput`` required; ``gpus`` boxes/GPUs;
            ``utilization`` the most it is run at).
        api: the baseline cloud price (the ledger's effective price, or a list price).
        demand: monthly demand; without it, payback and savings are not computed. Its
            ``projection`` (Mtok per month) drives payback and NPV when present.
        input_share: the workload's input share (default: the demand's, else the API
            blend's, else the profile's measurement share).
        discount_rate: annual cost of capital for the NPV (default: the profile's).
        list_price: a second price printed beside the baseline.
        sensitivity: add the grid of utilization x API price (x0.5, x1, x1.5).
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
    rate = profile.cost_of_capital if discount_rate is None else discount_rate
    if not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"discount_rate: must be between 0 and 1 (got {rate})")
    cost = factory_cost(profile)
    gpus = Decimal(profile.gpus)
    rented = profile.rent_per_hour is not None
    fixed = cost.cost_per_hour * HOURS_PER_MONTH
    running = (cost.electricity_per_hour + cost.ops_per_hour) * HOURS_PER_MONTH
    opex = fixed if rented else running
    upfront = Decimal(0) if rented else (profile.capex or Decimal(0)) * gpus
    tp = throughput_at(profile, share)
    capacity = tp.per_gpu * gpus * SECONDS_PER_HOUR * HOURS_PER_MONTH / MILLION
    usable = capacity * profile.utilization
    local_per_mtok = fixed / usable
    price = api.blended_per_mtok
    be_mtok = fixed / price
    be_util = be_mtok / capacity
    life_months = int((profile.life_years * 12).to_integral_value(rounding="ROUND_CEILING"))
    notes: list[str] = []
    if be_util > profile.utilization:
        notes.append(
            f"break-even needs {be_util:.2f}x this factory's capacity (it runs at most "
            f"{profile.utilization:.0%}): at this API price it never pays for itself"
        )
    demand_util = cloud = local = savings = payback = flat_payback = npv = None
    at_demand = None
    if demand is not None:
        served = min(demand.mtok_per_month, usable)
        overflow = demand.mtok_per_month - served
        demand_util = demand.mtok_per_month / capacity
        at_demand = fixed / served if served > 0 else None
        cloud = demand.mtok_per_month * price
        local = fixed + overflow * price
        savings = cloud - local
        path = list(demand.projection[:life_months]) or [demand.mtok_per_month] * life_months
        path += [path[-1]] * (life_months - len(path))
        cash = _cash_path(path, usable, price, opex)
        flat = _cash_path([demand.mtok_per_month] * life_months, usable, price, opex)
        npv = _npv(upfront, cash, rate)
        if overflow > 0:
            notes.append(
                f"demand exceeds the usable capacity by {out(overflow, 6)} Mtok/month; "
                "the overflow stays on the cloud API"
            )
        if upfront == 0:
            notes.append(
                "no upfront capital (rented): payback does not apply; compare monthly costs"
            )
        else:
            payback = _payback(upfront, cash)
            flat_payback = _payback(upfront, flat)
            if payback is None:
                notes.append(
                    f"the box does not pay back within its {life_months}-month life at this "
                    "demand: the cloud bill it avoids does not cover its capex and running cost"
                )
    grid: list[Sensitivity] = []
    if sensitivity:
        base_util = demand_util if demand_util is not None else profile.utilization
        utils = sorted(
            {min(base_util * k, Decimal(1)) for k in (Decimal("0.5"), 1, Decimal("1.5"))}
        )
        for u in utils:
            if u <= 0:
                continue
            for k in (Decimal("0.5"), Decimal(1), Decimal("1.5")):
                p = price * k
                mtok = capacity * u
                cash = [mtok * p - opex] * life_months
                grid.append(
                    Sensitivity(
                        u,
                        p,
                        fixed / mtok,
                        mtok * p - fixed,
                        _payback(upfront, cash),
                        _npv(upfront, cash, rate),
                    )
                )
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
        tp,
        opex,
        usable,
        at_demand,
        flat_payback,
        rate,
        life_months,
        npv,
        list_price,
        grid,
    )
