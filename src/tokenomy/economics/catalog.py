"""The shipped GPU/box catalog (``gpus.toml``): hardware figures and defaults, each sourced."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from tokenomy.economics.decimals import to_decimal

TFLOPS = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One catalog entry: a data-center GPU (per GPU) or a local box (the whole box).

    ``values`` holds the profile fields this entry sets (capex, power_kw, pue, ...), already
    converted to Decimal; ``sources`` names where each of them (and each hardware figure)
    comes from.
    """

    name: str
    label: str
    kind: str  # "datacenter" | "box"
    vendor: str
    memory_gb: Decimal | None
    tdp_w: Decimal | None
    peak_flops: dict[str, Decimal]  # precision -> dense FLOP/s
    values: dict[str, Decimal]
    reference_tco_per_hour: Decimal | None
    all_in_kw: Decimal | None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Defaults (with sources) plus the GPU/box entries, keyed by lower-case name."""

    defaults: dict[str, Decimal]
    default_sources: dict[str, str]
    gpus: dict[str, GpuSpec]

    def get(self, name: str) -> GpuSpec:
        """The entry called ``name`` (case-insensitive); ValueError lists the known names."""
        spec = self.gpus.get(name.lower())
        if spec is None:
            raise ValueError(f"unknown GPU/box {name!r} (known: {', '.join(sorted(self.gpus))})")
        return spec


# Profile fields a catalog entry may set; anything else in an entry is hardware description.
_PROFILE_FIELDS = (
    "capex",
    "rent_per_hour",
    "life_years",
    "cost_of_capital",
    "power_kw",
    "avg_draw",
    "pue",
    "electricity",
    "ops_per_year",
    "utilization",
    "input_cost_ratio",
    "throughput_input_share",
    "throughput",
)


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a Catalog from parsed TOML (the shipped file, or a test's own)."""
    raw_defaults = dict(data.get("defaults", {}))
    default_sources = {str(k): str(v) for k, v in raw_defaults.pop("sources", {}).items()}
    defaults = {k: to_decimal(v, f"defaults.{k}") for k, v in raw_defaults.items()}
    gpus: dict[str, GpuSpec] = {}
    for name, entry in data.get("gpus", {}).items():
        entry = dict(entry)
        sources = {str(k): str(v) for k, v in entry.pop("sources", {}).items()}
        values = {
            k: to_decimal(entry[k], f"gpus.{name}.{k}") for k in _PROFILE_FIELDS if k in entry
        }
        all_in = entry.get("all_in_kw")
        all_in_kw = to_decimal(all_in, f"gpus.{name}.all_in_kw") if all_in is not None else None
        if all_in_kw is not None and "pue" not in values:
            # The facility overhead implied by the all-in figure, so that power_kw x pue
            # reproduces InferenceX's per-MW numbers exactly.
            values["pue"] = all_in_kw / values["power_kw"]
            sources["pue"] = (
                f"implied: all-in {all_in_kw} kW / IT {values['power_kw']} kW "
                f"({sources.get('all_in_kw', 'catalog')})"
            )
        peak = {
            str(p): to_decimal(v, f"gpus.{name}.peak_tflops.{p}") * TFLOPS
            for p, v in entry.get("peak_tflops", {}).items()
        }
        tco = entry.get("reference_tco_per_hour")
        gpus[name.lower()] = GpuSpec(
            name=name.lower(),
            label=str(entry.get("label", name)),
            kind=str(entry.get("kind", "datacenter")),
            vendor=str(entry.get("vendor", "")),
            memory_gb=_opt(entry.get("memory_gb"), f"gpus.{name}.memory_gb"),
            tdp_w=_opt(entry.get("tdp_w"), f"gpus.{name}.tdp_w"),
            peak_flops=peak,
            values=values,
            reference_tco_per_hour=_opt(tco, f"gpus.{name}.reference_tco_per_hour"),
            all_in_kw=all_in_kw,
            sources=sources,
        )
    return Catalog(defaults, default_sources, gpus)


def _opt(value: Any, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, field)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped inside the package (read once per process)."""
    text = resources.files("tokenomy.economics").joinpath("gpus.toml").read_text("utf-8")
    return parse_catalog(tomllib.loads(text))
