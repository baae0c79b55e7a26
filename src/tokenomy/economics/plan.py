"""Capacity planning: GPUs, servers, megawatts and dollars for an agent fleet's demand.

Two routes to the GPU count:

* throughput route: ``agents x tasks/day x tokens/task / 86,400 x peak_factor`` tokens/s,
  divided by ``throughput_at_mix x utilization`` per GPU (measured serving throughput,
  converted to the workload's input share by ``factory.throughput_at``, as ``breakeven``
  does);
* FLOPs route: ``agents x tokens/s per agent x 2 x active_params / (peak FLOP/s x
  utilization)`` (2 FLOPs per active parameter per token: one multiply, one add).

Either way the count is rounded up to whole servers; power, upfront capex and the cost per
day and month come from a factory profile (``tokenomy.economics.profiles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from tokenomy.economics.decimals import (
    HOURS_PER_MONTH,
    HOURS_PER_YEAR,
    MILLION,
    SECONDS_PER_DAY,
    ceil_div,
    out,
    sig,
    to_decimal,
)
from tokenomy.economics.factory import factory_cost, throughput_at
from tokenomy.economics.profiles import FactoryProfile

#: Tokens per task "from the field" (seed: token-economy.txt).
TOKENS_PER_TASK_PRESETS: dict[str, int] = {
    "chat": 2_000,  # a human chat turn: 1,000-3,000 tokens
    "moderate": 100_000,  # a moderate agent task
    "complex": 1_000_000,  # a complex agent task
    "itinerary": 930_000,  # Cline + MCP + Claude Sonnet 3.7 planning a travel itinerary
}

_FLOPS_PER_PARAM_PER_TOKEN = Decimal(2)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named planning preset: FLOPs-route inputs plus a realistic utilization to compare."""

    name: str
    description: str
    agents: Decimal
    tokens_per_s_per_agent: Decimal
    active_params: Decimal
    gpu: str
    precision: str
    utilization: Decimal
    realistic_utilization: Decimal
    note: str


SCENARIOS: dict[str, Scenario] = {
    "agents-1b": Scenario(
        name="agents-1b",
        description="the seed's claim: 1 billion agent DAU need ~141,500 H100 SXM",
        agents=Decimal(10) ** 9,
        tokens_per_s_per_agent=Decimal(1),
        active_params=Decimal(70) * Decimal(10) ** 9,
        gpu="h100-sxm",
        precision="bf16",
        utilization=Decimal(1),
        realistic_utilization=Decimal("0.3"),
        note=(
            "100% of dense BF16 peak is a physical ceiling no serving stack reaches: the "
            "claim is optimistic. Decoding is memory-bound; 30% of peak (shown as the "
            "realistic case) is already good for large-batch serving."
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class PlanResult:
    """GPUs, power and money for one demand on one factory profile."""

    route: str  # "throughput" | "flops"
    tokens_per_day: Decimal
    peak_tokens_per_s: Decimal
    gpus_exact: Decimal
    gpus: int
    servers: int
    gpus_per_server: int
    mw_it: Decimal
    mw_facility: Decimal
    mwh_per_day: Decimal
    cost_per_day: Decimal
    cost_per_mtok: Decimal
    cost_per_year: Decimal
    profile: FactoryProfile
    assumptions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    upfront_capex: Decimal = Decimal(0)  # gpus x capex (0 when rented)
    cost_per_month: Decimal = Decimal(0)  # cost_per_day x 730 / 24

    def profile_assumptions(self) -> list[dict[str, Any]]:
        """The profile's inputs, with the fleet this plan computed instead of ``gpus 1``."""
        rows = [a for a in self.profile.assumptions() if a["name"] != "gpus"]
        rows.append(
            {
                "name": "gpus",
                "value": self.gpus,
                "unit": "GPUs",
                "source": f"computed: {sig(self.gpus_exact)} rounded up to whole servers",
            }
        )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (10 significant digits) with every assumption."""
        return {
            "route": self.route,
            "gpus": self.gpus,
            "gpus_exact": out(self.gpus_exact),
            "servers": self.servers,
            "gpus_per_server": self.gpus_per_server,
            "tokens_per_day": out(self.tokens_per_day),
            "peak_tokens_per_s": out(self.peak_tokens_per_s),
            "mw_it": out(self.mw_it),
            "mw_facility": out(self.mw_facility),
            "mwh_per_day": out(self.mwh_per_day),
            "cost_per_day": out(self.cost_per_day),
            "cost_per_year": out(self.cost_per_year),
            "cost_per_mtok": out(self.cost_per_mtok),
            "cost_per_month": out(self.cost_per_month),
            "upfront_capex": out(self.upfront_capex),
            "assumptions": [*self.assumptions, *self.profile_assumptions()],
            "notes": list(self.notes),
        }


def tokens_per_task(value: str | int | Decimal) -> Decimal:
    """A number of tokens, or a preset name (chat, moderate, complex, itinerary)."""
    if isinstance(value, str) and value.strip().lower() in TOKENS_PER_TASK_PRESETS:
        return Decimal(TOKENS_PER_TASK_PRESETS[value.strip().lower()])
    try:
        result = to_decimal(value, "tokens_per_task")
    except ValueError:
        presets = ", ".join(f"{k} ({v:,})" for k, v in TOKENS_PER_TASK_PRESETS.items())
        raise ValueError(f"tokens_per_task: a number or one of {presets}; got {value!r}") from None
    if result <= 0:
        raise ValueError(f"tokens_per_task: must be > 0 (got {value})")
    return result


def _positive(name: str, value: Decimal) -> None:
    if value <= 0:
        raise ValueError(f"{name}: must be > 0 (got {value})")


def _finish(
    route: str,
    gpus_exact: Decimal,
    tokens_per_day: Decimal,
    peak_tps: Decimal,
    profile: FactoryProfile,
    gpus_per_server: int,
    assumptions: list[dict[str, Any]],
    notes: list[str],
) -> PlanResult:
    if gpus_per_server < 1:
        raise ValueError(f"gpus_per_server: must be >= 1 (got {gpus_per_server})")
    servers = ceil_div(gpus_exact, Decimal(gpus_per_server)) if gpus_exact > 0 else 0
    gpus = servers * gpus_per_server
    # Cost of one GPU-hour from the profile, independent of its own gpus/throughput.
    per_gpu = factory_cost(replace(profile, gpus=1, throughput=None)).cost_per_hour
    mw_it = Decimal(gpus) * profile.power_kw / 1000
    mw_facility = mw_it * profile.pue
    mwh_per_day = Decimal(gpus) * profile.all_in_kw * 24 / 1000
    cost_per_day = Decimal(gpus) * per_gpu * 24
    cost_per_mtok = cost_per_day / (tokens_per_day / MILLION) if tokens_per_day else Decimal(0)
    rented = profile.rent_per_hour is not None
    upfront = Decimal(0) if rented else Decimal(gpus) * (profile.capex or Decimal(0))
    return PlanResult(
        route,
        tokens_per_day,
        peak_tps,
        gpus_exact,
        gpus,
        servers,
        gpus_per_server,
        mw_it,
        mw_facility,
        mwh_per_day,
        cost_per_day,
        cost_per_mtok,
        cost_per_day * HOURS_PER_YEAR / 24,
        profile,
        assumptions,
        notes,
        upfront,
        cost_per_day * HOURS_PER_MONTH / 24,
    )


def plan_throughput(
    profile: FactoryProfile,
    *,
    agents: Decimal,
    tasks_per_day: Decimal,
    tokens_per_task: Decimal,
    peak_factor: Decimal = Decimal(1),
    gpus_per_server: int = 8,
    input_share: Decimal | None = None,
) -> PlanResult:
    """Throughput route: demand in tokens/s over tokens/s per GPU at the workload's mix.

    ``profile.throughput`` converted to ``input_share`` (``factory.throughput_at``, the
    model ``breakeven`` uses) and ``profile.utilization`` size the fleet; ``peak_factor``
    sizes for the busiest hour rather than the daily average.
    """
    if profile.throughput is None:
        raise ValueError("throughput: required (tokens/s per GPU) for the throughput route")
    tp = throughput_at(profile, input_share)
    for name, value in (
        ("agents", agents),
        ("tasks_per_day", tasks_per_day),
        ("tokens_per_task", tokens_per_task),
        ("peak_factor", peak_factor),
    ):
        _positive(name, value)
    tokens_per_day = agents * tasks_per_day * tokens_per_task
    peak_tps = tokens_per_day / SECONDS_PER_DAY * peak_factor
    gpus_exact = peak_tps / (tp.per_gpu * profile.utilization)
    assumptions = [
        {"name": "agents", "value": agents, "unit": "daily active agents", "source": "input"},
        {"name": "tasks_per_day", "value": tasks_per_day, "unit": "per agent", "source": "input"},
        {"name": "tokens_per_task", "value": tokens_per_task, "unit": "tokens", "source": "input"},
        {"name": "peak_factor", "value": peak_factor, "unit": "peak / average", "source": "input"},
        {"name": "gpus_per_server", "value": gpus_per_server, "unit": "GPUs", "source": "input"},
        *tp.assumptions("--input-share" if input_share is not None else "as measured"),
    ]
    return _finish(
        "throughput",
        gpus_exact,
        tokens_per_day,
        peak_tps,
        profile,
        gpus_per_server,
        assumptions,
        [],
    )


def plan_flops(
    profile: FactoryProfile,
    *,
    agents: Decimal,
    tokens_per_s_per_agent: Decimal,
    active_params: Decimal,
    peak_flops: Decimal,
    precision: str = "bf16",
    gpus_per_server: int = 8,
) -> PlanResult:
    """FLOPs route: ``agents x tok/s x 2 x active_params / (peak FLOP/s x utilization)``.

    ``profile.utilization`` is the fraction of dense peak actually sustained (MFU).
    """
    for name, value in (
        ("agents", agents),
        ("tokens_per_s_per_agent", tokens_per_s_per_agent),
        ("active_params", active_params),
        ("peak_flops", peak_flops),
    ):
        _positive(name, value)
    peak_tps = agents * tokens_per_s_per_agent
    flops_needed = peak_tps * _FLOPS_PER_PARAM_PER_TOKEN * active_params
    gpus_exact = flops_needed / (peak_flops * profile.utilization)
    assumptions = [
        {"name": "agents", "value": agents, "unit": "concurrent agents", "source": "input"},
        {
            "name": "tokens_per_s_per_agent",
            "value": tokens_per_s_per_agent,
            "unit": "tokens/s",
            "source": "input",
        },
        {"name": "active_params", "value": active_params, "unit": "parameters", "source": "input"},
        {
            "name": "flops_per_token",
            "value": _FLOPS_PER_PARAM_PER_TOKEN * active_params,
            "unit": "FLOP",
            "source": "2 x active parameters (forward pass)",
        },
        {
            "name": "peak_flops",
            "value": peak_flops,
            "unit": f"FLOP/s dense {precision}",
            "source": profile.label if profile.gpu else "input",
        },
        {"name": "gpus_per_server", "value": gpus_per_server, "unit": "GPUs", "source": "input"},
    ]
    return _finish(
        "flops",
        gpus_exact,
        peak_tps * SECONDS_PER_DAY,
        peak_tps,
        profile,
        gpus_per_server,
        assumptions,
        [],
    )


def peak_flops_of(profile: FactoryProfile, precision: str) -> Decimal:
    """Dense peak FLOP/s of the profile's GPU at ``precision``; ValueError lists what exists."""
    value = profile.peak_flops.get(precision.lower())
    if value is None:
        known = ", ".join(sorted(profile.peak_flops)) or "none (give --peak-tflops)"
        raise ValueError(f"precision: {profile.label} has no {precision} peak (known: {known})")
    return value


def plan_scenario(
    scenario: Scenario, profile: FactoryProfile, gpus_per_server: int = 8
) -> tuple[PlanResult, PlanResult]:
    """The scenario as stated and the same demand at its realistic utilization."""
    peak = peak_flops_of(profile, scenario.precision)
    stated_profile = replace(
        profile,
        utilization=scenario.utilization,
        sources={**profile.sources, "utilization": f"scenario {scenario.name} (as claimed)"},
    )
    real_profile = replace(
        profile,
        utilization=scenario.realistic_utilization,
        sources={
            **profile.sources,
            "utilization": f"scenario {scenario.name}: realistic MFU (tokenomy assumption)",
        },
    )
    args: dict[str, Any] = {
        "agents": scenario.agents,
        "tokens_per_s_per_agent": scenario.tokens_per_s_per_agent,
        "active_params": scenario.active_params,
        "peak_flops": peak,
        "precision": scenario.precision,
        "gpus_per_server": gpus_per_server,
    }
    stated = plan_flops(stated_profile, **args)
    realistic = plan_flops(real_profile, **args)
    return (
        replace(stated, notes=[scenario.description, scenario.note]),
        replace(
            realistic, notes=[f"same demand at {scenario.realistic_utilization:%} of dense peak"]
        ),
    )
