"""``tokenomy factory``: what a token costs to make on a given box."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy.cli.economics.factory_options import FactoryFlags, with_factory_options
from tokenomy.cli.economics.output import emit, metric
from tokenomy.cli.output import FormatOption, OutputFormat, render
from tokenomy.economics import factory_cost, load_catalog
from tokenomy.economics.decimals import out


@with_factory_options()
def factory(
    factory: FactoryFlags,
    list_catalog: Annotated[bool, typer.Option("--list", help="List the GPU/box catalog.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """What a token costs to make: $/hour (chips, electricity, ops), $/Mtok, tokens/s per MW.

    Example: tokenomy factory --gpu h100-sxm --throughput 1000 --electricity 0.06
    Example: tokenomy factory --rent-per-hour 1.30 --throughput 1000 --format json
    """
    if list_catalog:
        _list_catalog(fmt)
        return
    profile = factory.profile()
    cost = factory_cost(profile)
    data = cost.to_dict()
    notes = (
        []
        if profile.throughput is not None
        else ["give --throughput (tokens/s per GPU) for per-token and energy-per-token figures"]
    )
    metrics = [
        metric("cost_per_hour", data["cost_per_hour"], f"USD/h ({profile.gpus} GPU)"),
        metric(
            "  capex_per_hour (chips)",
            data["capex_per_hour"],
            "USD/h (rent)" if profile.rent_per_hour is not None else "USD/h",
        ),
        metric("  electricity_per_hour", data["electricity_per_hour"], "USD/h"),
        metric("  ops_per_hour", data["ops_per_hour"], "USD/h"),
        metric("cost_per_mtok", data["cost_per_mtok"], "USD per million tokens"),
        metric("  input_cost_per_mtok", data["input_cost_per_mtok"], "USD/Mtok (prefill)"),
        metric("  output_cost_per_mtok", data["output_cost_per_mtok"], "USD/Mtok (decode)"),
        metric("tokens_per_s_per_mw", data["tokens_per_s_per_mw"], "tokens/s per all-in MW"),
        metric("joules_per_token", data["joules_per_token"], "J/token (all-in)"),
        metric("kwh_per_mtok", data["kwh_per_mtok"], "kWh per million tokens"),
        metric(
            "electricity_share_total",
            data["electricity_share_total"],
            "of total cost (hardware included)",
        ),
        metric(
            "electricity_share_opex",
            data["electricity_share_opex"],
            "of operating cost (hardware excluded)",
        ),
    ]
    if profile.reference_tco_per_hour is not None:
        metrics.append(
            metric(
                "reference_tco_per_gpu_hour",
                data["reference_tco_per_gpu_hour"],
                "USD/GPU-h, InferenceX hyperscaler TCO (for comparison)",
            )
        )
    emit(
        fmt,
        data,
        metrics,
        title=f"Token factory: {profile.label}",
        assumptions=data["assumptions"],
        notes=notes,
    )


def _list_catalog(fmt: OutputFormat) -> None:
    cat = load_catalog()
    rows = []
    for spec in cat.gpus.values():
        pue = spec.values.get("pue", cat.defaults["pue"])
        flops = spec.peak_flops
        rows.append(
            {
                "gpu": spec.name,
                "label": spec.label,
                "kind": spec.kind,
                "capex": spec.values.get("capex"),
                "power_kw": spec.values.get("power_kw"),
                "all_in_kw": out(spec.values["power_kw"] * pue, 6),
                "bf16_tflops": out(flops["bf16"] / 10**12) if "bf16" in flops else None,
                "fp8_tflops": out(flops["fp8"] / 10**12) if "fp8" in flops else None,
                "reference_tco_per_hour": spec.reference_tco_per_hour,
            }
        )
    render(rows, fmt, title="GPU/box catalog (sources: docs/economics.md, gpus.toml)")
