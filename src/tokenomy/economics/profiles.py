"""Factory profiles: everything needed to cost tokens made on one kind of hardware.

A profile is built in layers, each later layer overriding the earlier ones and recording
where every number came from (printed with every result):

1. the catalog's ``[defaults]`` (Uptime PUE, EIA electricity price, ...);
2. a catalog GPU/box (``gpu = "h100-sxm"``), if named;
3. a ``[factories.NAME]`` table from the config, if used;
4. command-line flags.

``validate_factory_table`` is what ``tokenomy.config`` calls for each ``[factories.NAME]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokenomy.economics.catalog import Catalog, GpuSpec, load_catalog
from tokenomy.economics.decimals import sig, to_decimal


@dataclass(frozen=True, slots=True)
class _Rule:
    """Range check for one numeric field: ``lo``/``hi`` bounds, open or closed."""

    lo: Decimal | None
    lo_open: bool
    hi: Decimal | None
    description: str

    def check(self, name: str, value: Decimal) -> None:
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            op = ">" if self.lo_open else ">="
            raise ValueError(f"{name}: must be {op} {self.lo} (got {value})")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"{name}: must be <= {self.hi} (got {value})")


_ZERO, _ONE = Decimal(0), Decimal(1)

#: Numeric profile fields, their ranges and meaning (also the CLI flag help).
NUMERIC_FIELDS: dict[str, _Rule] = {
    "capex": _Rule(_ZERO, False, None, "purchase price per GPU (or per box), USD"),
    "rent_per_hour": _Rule(_ZERO, False, None, "rent per GPU-hour instead of capex, USD"),
    "life_years": _Rule(_ZERO, True, Decimal(50), "economic life for amortization, years"),
    "cost_of_capital": _Rule(
        _ZERO,
        False,
        _ONE,
        "annual cost of capital for the capital recovery factor (0 = straight line)",
    ),
    "power_kw": _Rule(_ZERO, False, None, "IT power per GPU at full load, kW"),
    "avg_draw": _Rule(_ZERO, True, _ONE, "average draw as a fraction of power_kw"),
    "pue": _Rule(_ONE, False, Decimal(5), "power usage effectiveness (facility / IT power)"),
    "electricity": _Rule(_ZERO, False, None, "electricity price, USD per kWh"),
    "ops_per_year": _Rule(_ZERO, False, None, "operations per GPU per year, USD"),
    "throughput": _Rule(_ZERO, True, None, "tokens per second per GPU while serving"),
    "utilization": _Rule(_ZERO, True, _ONE, "fraction of hours spent serving at throughput"),
    "input_cost_ratio": _Rule(
        _ZERO, True, Decimal(10), "cost of an input (prefill) token relative to an output token"
    ),
    "throughput_input_share": _Rule(
        _ZERO, False, _ONE, "share of input tokens in the workload the throughput was measured on"
    ),
}
#: Every key a ``[factories.NAME]`` table may contain.
TABLE_KEYS = ("gpu", "label", *NUMERIC_FIELDS, "gpus", "rent_includes_power")


@dataclass(frozen=True, slots=True)
class FactoryProfile:
    """Resolved inputs of the token-factory cost model; all money in USD (Decimal).

    Capex, power, ops and throughput are per GPU; ``gpus`` multiplies them (a whole box is
    ``gpus = 1`` with the box's figures). Exactly one of ``capex`` / ``rent_per_hour`` is set.
    """

    name: str
    label: str
    kind: str
    gpu: str | None
    capex: Decimal | None
    rent_per_hour: Decimal | None
    rent_includes_power: bool
    life_years: Decimal
    cost_of_capital: Decimal
    power_kw: Decimal
    avg_draw: Decimal
    pue: Decimal
    electricity: Decimal
    ops_per_year: Decimal
    throughput: Decimal | None
    utilization: Decimal
    gpus: int
    input_cost_ratio: Decimal
    throughput_input_share: Decimal
    peak_flops: dict[str, Decimal] = field(default_factory=dict)
    reference_tco_per_hour: Decimal | None = None
    reference_all_in_kw: Decimal | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def all_in_kw(self) -> Decimal:
        """Power per GPU at the utility meter: IT power x average draw x PUE."""
        return self.power_kw * self.avg_draw * self.pue

    def assumptions(self) -> list[dict[str, Any]]:
        """Every input with its value, unit and source, in a stable order, for printing."""
        rows: list[dict[str, Any]] = []
        units = {
            "capex": "USD/GPU",
            "rent_per_hour": "USD/GPU-h",
            "life_years": "years",
            "cost_of_capital": "1/year",
            "power_kw": "kW/GPU",
            "avg_draw": "fraction",
            "pue": "ratio",
            "electricity": "USD/kWh",
            "ops_per_year": "USD/GPU-year",
            "throughput": "tokens/s/GPU",
            "utilization": "fraction",
            "gpus": "GPUs",
            "input_cost_ratio": "ratio",
            "throughput_input_share": "fraction",
        }
        if self.gpu:
            rows.append(
                {"name": "gpu", "value": self.gpu, "unit": "", "source": f"catalog: {self.label}"}
            )
        for key, unit in units.items():
            value = getattr(self, key)
            if value is None or (
                self.rent_per_hour is not None and key in ("life_years", "cost_of_capital")
            ):
                continue  # amortization inputs mean nothing for a rented GPU
            shown = sig(value) if isinstance(value, Decimal) else value
            rows.append(
                {"name": key, "value": shown, "unit": unit, "source": self.sources.get(key, "")}
            )
        if self.rent_per_hour is not None:
            rows.append(
                {
                    "name": "rent_includes_power",
                    "value": self.rent_includes_power,
                    "unit": "",
                    "source": self.sources.get("rent_includes_power", ""),
                }
            )
        return rows


def _source_for(origin: str) -> Callable[[str], str]:
    return lambda key: origin.format(key=key, flag="--" + key.replace("_", "-"))


def build_profile(
    name: str,
    layers: Sequence[tuple[Mapping[str, Any], str]] = (),
    *,
    catalog: Catalog | None = None,
    require_throughput: bool = False,
    require_cost: bool = True,
) -> FactoryProfile:
    """Resolve a profile from override layers applied over the catalog defaults.

    Args:
        name: the profile's name (a config factory name, a GPU name, or ``"custom"``).
        layers: ``(values, origin)`` pairs, later ones win. ``values`` may contain any of
            ``TABLE_KEYS``; a ``gpu`` key selects a catalog entry as the base. ``origin`` is
            a format string for the source of each value, with ``{key}`` and ``{flag}``,
            e.g. ``"config [factories.lab] {key}"`` or ``"flag {flag}"``.
        catalog: defaults to the shipped catalog.
        require_throughput: raise if no layer gives a throughput (needed for $/token).
        require_cost: raise if neither capex nor rent_per_hour is known.

    Raises:
        ValueError: naming the offending field.
    """
    cat = catalog or load_catalog()
    values: dict[str, Any] = dict(cat.defaults)
    sources: dict[str, str] = dict(cat.default_sources)
    values.setdefault("rent_includes_power", True)
    sources.setdefault("rent_includes_power", "default: a rent price includes power")
    spec: GpuSpec | None = None
    label = name
    for layer, origin in layers:
        src = _source_for(origin)
        unknown = [k for k in layer if k not in TABLE_KEYS]
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key (allowed: {', '.join(TABLE_KEYS)})")
        if layer.get("gpu") is not None:
            gpu_name = layer["gpu"]
            if not isinstance(gpu_name, str):
                raise ValueError(f"gpu: expected a catalog name, got {gpu_name!r}")
            try:
                spec = cat.get(gpu_name)
            except ValueError as exc:
                raise ValueError(f"gpu: {exc}") from None
            values.update(spec.values)
            sources.update({k: v for k, v in spec.sources.items() if k in spec.values})
            label = spec.label
            if "capex" in spec.values:
                values.pop("rent_per_hour", None)
        if layer.get("label") is not None:
            label = str(layer["label"])
        if "capex" in layer and "rent_per_hour" in layer:
            raise ValueError("rent_per_hour: give either capex or rent_per_hour, not both")
        for key, raw in layer.items():
            if key in ("gpu", "label") or raw is None:
                continue
            if key == "gpus":
                values["gpus"] = _int_field("gpus", raw)
            elif key == "rent_includes_power":
                if not isinstance(raw, bool):
                    raise ValueError(f"rent_includes_power: expected true or false, got {raw!r}")
                values[key] = raw
                if not raw:  # say which flag or key said so
                    sources[key] = src(key).replace(
                        "--rent-includes-power", "--rent-excludes-power"
                    )
                    continue
            else:
                values[key] = to_decimal(raw, key)
                if key == "capex":
                    values.pop("rent_per_hour", None)
                elif key == "rent_per_hour":
                    values.pop("capex", None)
            sources[key] = src(key)
    ops_given = any(layer.get("ops_per_year") is not None for layer, _ in layers)
    if values.get("rent_per_hour") is not None and not ops_given:
        # A rent price already pays the provider's operations: adding the catalog's
        # per-GPU operations cost would count them twice. Explicit, and overridable.
        values["ops_per_year"] = Decimal(0)
        sources["ops_per_year"] = "rented: 0 (the rent pays operations); set --ops-per-year"
    for key, rule in NUMERIC_FIELDS.items():
        if key in values:
            rule.check(key, values[key])
    gpus = values.get("gpus", 1)
    gpus = gpus if isinstance(gpus, int) else _int_field("gpus", gpus)
    if require_cost and values.get("capex") is None and values.get("rent_per_hour") is None:
        raise ValueError("capex: required (or rent_per_hour); name a catalog gpu or give one")
    if "power_kw" not in values:
        if values.get("rent_per_hour") is None:
            raise ValueError("power_kw: required (IT kW per GPU); name a catalog gpu or give one")
        # A rent that includes power needs no power figure; energy metrics become n/a.
        values["power_kw"] = Decimal(0)
        sources["power_kw"] = "not given: energy metrics unavailable"
    if require_throughput and values.get("throughput") is None:
        raise ValueError("throughput: required (tokens/s per GPU for your model and engine)")
    return FactoryProfile(
        name=name,
        label=label,
        kind=spec.kind if spec else "custom",
        gpu=spec.name if spec else None,
        capex=values.get("capex"),
        rent_per_hour=values.get("rent_per_hour"),
        rent_includes_power=bool(values["rent_includes_power"]),
        life_years=values["life_years"],
        cost_of_capital=values["cost_of_capital"],
        power_kw=values["power_kw"],
        avg_draw=values["avg_draw"],
        pue=values["pue"],
        electricity=values["electricity"],
        ops_per_year=values["ops_per_year"],
        throughput=values.get("throughput"),
        utilization=values["utilization"],
        gpus=gpus,
        input_cost_ratio=values["input_cost_ratio"],
        throughput_input_share=values["throughput_input_share"],
        peak_flops=dict(spec.peak_flops) if spec else {},
        reference_tco_per_hour=spec.reference_tco_per_hour if spec else None,
        reference_all_in_kw=spec.all_in_kw if spec else None,
        sources=sources,
    )


def _int_field(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str | float):
        raise ValueError(f"{name}: expected a whole number, got {raw!r}")
    value = to_decimal(raw, name)
    if value != value.to_integral_value() or value < 1:
        raise ValueError(f"{name}: must be a whole number >= 1 (got {raw!r})")
    return int(value)


def profile_from_table(
    name: str, table: Mapping[str, Any], *, catalog: Catalog | None = None
) -> FactoryProfile:
    """The profile a ``[factories.NAME]`` config table describes (throughput required)."""
    return build_profile(
        name,
        [(table, f"config [factories.{name}] {{key}}")],
        catalog=catalog,
        require_throughput=True,
    )


def validate_factory_table(name: str, table: dict[str, Any]) -> None:
    """Raise ValueError with a clear message when a ``[factories.NAME]`` table is invalid.

    The message starts with the offending field, e.g. ``"pue: must be >= 1 (got 0.9)"``;
    ``tokenomy.config`` prefixes the file and ``factories.NAME``.
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"expected a table, got {type(table).__name__}")
    profile_from_table(name, table)
