"""``tokenomy plan``: capacity from demand (GPUs, servers, megawatts, dollars)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer

from tokenomy.cli.economics.factory_options import FactoryFlags, with_factory_options
from tokenomy.cli.economics.output import emit, fail_on, metric
from tokenomy.cli.output import FormatOption, OutputFormat, fail
from tokenomy.economics import SCENARIOS, plan_flops, plan_scenario, plan_throughput
from tokenomy.economics.decimals import human, parse_decimal
from tokenomy.economics.plan import peak_flops_of, tokens_per_task


def _number(help_text: str) -> Any:
    return typer.Option(parser=parse_decimal, show_default=False, help=help_text)


@with_factory_options(exclude=("gpus",))
def plan(
    factory: FactoryFlags,
    scenario: Annotated[
        str | None, typer.Option(help=f"Preset demand: {', '.join(SCENARIOS)}.")
    ] = None,
    agents: Annotated[Decimal | None, _number("Daily active agents (e.g. 1e6).")] = None,
    tasks_per_day: Annotated[Decimal | None, _number("Tasks per agent per day.")] = None,
    tokens_per_task_: Annotated[
        str | None,
        typer.Option(
            "--tokens-per-task",
            help="Tokens per task, or chat (2,000), moderate (100,000), "
            "complex (1,000,000), itinerary (930,000).",
        ),
    ] = None,
    peak_factor: Annotated[
        Decimal, typer.Option(parser=parse_decimal, help="Busiest hour / average hour.")
    ] = Decimal(1),
    tokens_per_s_per_agent: Annotated[
        Decimal | None, _number("FLOPs route: tokens/s each agent consumes.")
    ] = None,
    active_params: Annotated[
        Decimal | None, _number("FLOPs route: active parameters per token (e.g. 70e9).")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="FLOPs route: peak FLOP/s at bf16, fp8 or fp4.")
    ] = "bf16",
    peak_tflops: Annotated[
        Decimal | None, _number("FLOPs route: dense peak TFLOP/s per GPU [default: from --gpu].")
    ] = None,
    gpus_per_server: Annotated[int, typer.Option(min=1, help="GPUs per server.")] = 8,
    input_share: Annotated[
        Decimal | None,
        _number(
            "Throughput route: the workload's share of input tokens (converts --throughput "
            "as breakeven does) [default: the throughput's own mix]."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Capacity from demand: GPUs (whole servers), MW, MWh/day, $/day, effective $/Mtok.

    Example: tokenomy plan --agents 10000 --tasks-per-day 20 --tokens-per-task moderate --gpu h100-sxm --throughput 2500 --utilization 0.6
    Example: tokenomy plan --scenario agents-1b
    Example: tokenomy plan --agents 1e6 --tokens-per-s-per-agent 2 --active-params 37e9 --gpu b200 --precision fp8 --utilization 0.3
    """  # noqa: E501
    if scenario is not None:
        sc = SCENARIOS.get(scenario)
        if sc is None:
            raise fail(f"scenario: unknown {scenario!r} (known: {', '.join(SCENARIOS)})")
        profile = factory.profile(default_gpu=sc.gpu)
        with fail_on(ValueError):
            stated, realistic = plan_scenario(sc, profile, gpus_per_server)
        data = {"scenario": sc.name, **stated.to_dict(), "realistic": realistic.to_dict()}
        _emit_plan(fmt, data, stated, realistic)
        return
    profile = factory.profile()
    with fail_on(ValueError):
        if tokens_per_s_per_agent is not None or active_params is not None:
            if agents is None or tokens_per_s_per_agent is None or active_params is None:
                raise ValueError(
                    "FLOPs route needs --agents, --tokens-per-s-per-agent and --active-params"
                )
            peak = (
                peak_tflops * 10**12
                if peak_tflops is not None
                else peak_flops_of(profile, precision)
            )
            result = plan_flops(
                profile,
                agents=agents,
                tokens_per_s_per_agent=tokens_per_s_per_agent,
                active_params=active_params,
                peak_flops=peak,
                precision=precision,
                gpus_per_server=gpus_per_server,
            )
        else:
            if agents is None or tasks_per_day is None or tokens_per_task_ is None:
                raise ValueError(
                    "throughput route needs --agents, --tasks-per-day and "
                    "--tokens-per-task (or use --scenario, or the FLOPs route)"
                )
            result = plan_throughput(
                profile,
                agents=agents,
                tasks_per_day=tasks_per_day,
                tokens_per_task=tokens_per_task(tokens_per_task_),
                peak_factor=peak_factor,
                gpus_per_server=gpus_per_server,
                input_share=input_share,
            )
    _emit_plan(fmt, result.to_dict(), result, None)


def _plan_metrics(r: Any, suffix: str = "", at: str = "") -> list[dict[str, Any]]:
    return [
        metric(f"gpus{suffix}", r.gpus, f"{r.profile.label} ({human(r.gpus_exact, 7)} exact){at}"),
        metric(f"servers{suffix}", r.servers, f"x {r.gpus_per_server} GPUs{at}"),
        metric(f"upfront_capex{suffix}", r.upfront_capex, f"USD (gpus x capex; 0 rented){at}"),
        metric(f"mw_it{suffix}", r.mw_it, f"MW IT load{at}"),
        metric(
            f"mw_facility{suffix}",
            r.mw_facility,
            f"MW at the meter (PUE {human(r.profile.pue, 4)}){at}",
        ),
        metric(f"mwh_per_day{suffix}", r.mwh_per_day, f"MWh/day{at}"),
        metric(f"cost_per_day{suffix}", r.cost_per_day, f"USD/day{at}"),
        metric(f"cost_per_month{suffix}", r.cost_per_month, f"USD/month (730 h){at}"),
        metric(f"cost_per_year{suffix}", r.cost_per_year, f"USD/year{at}"),
        metric(
            f"cost_per_mtok{suffix}", r.cost_per_mtok, f"USD per million tokens (effective){at}"
        ),
    ]


def _emit_plan(fmt: OutputFormat, data: dict[str, Any], result: Any, realistic: Any) -> None:
    metrics = [
        metric("tokens_per_day", result.tokens_per_day, "tokens/day"),
        metric("peak_tokens_per_s", result.peak_tokens_per_s, "tokens/s to serve"),
        *_plan_metrics(result),
    ]
    notes = list(result.notes)
    if realistic is not None:
        metrics += _plan_metrics(
            realistic, "_realistic", f" @ {human(realistic.profile.utilization * 100)}%"
        )
        notes += realistic.notes
    emit(
        fmt,
        data,
        metrics,
        title=f"Capacity plan ({result.route} route)",
        assumptions=data["assumptions"],
        notes=notes,
    )
