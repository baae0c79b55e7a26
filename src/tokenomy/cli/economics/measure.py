"""``tokenomy factory measure``: benchmark an OpenAI-compatible server as InferenceX does."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tokenomy.cli.economics.factory_options import FactoryFlags, with_factory_options
from tokenomy.cli.economics.output import fail_on
from tokenomy.cli.output import FormatOption, OutputFormat, err_console, fail, render
from tokenomy.economics.measure import best_point, measure, plot, rows, save_throughput
from tokenomy.economics.profiles import FactoryProfile

_TABLE_KEYS = (
    "conc",
    "tput_per_gpu",
    "output_tput_per_gpu",
    "median_ttft",
    "p99_ttft",
    "median_tpot",
    "median_intvty",
    "median_e2el",
    "usd_per_mtok_total",
    "usd_per_mtok_output",
    "j_per_token",
    "flags",
)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("a comma-separated list of integers, e.g. 1,2,4,8") from None
    if not levels or any(n < 1 for n in levels):
        raise typer.BadParameter("concurrency levels must be >= 1")
    return levels


@with_factory_options(exclude=("throughput", "utilization"))
def measure_cmd(
    factory: FactoryFlags,
    endpoint: Annotated[
        str, typer.Option(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    ],
    model: Annotated[str, typer.Option(help="Model id to send.")],
    concurrency: Annotated[
        str, typer.Option(help="Comma-separated concurrency levels.")
    ] = "1,2,4,8",
    isl: Annotated[int, typer.Option(min=1, help="Input length, tokens.")] = 1024,
    osl: Annotated[int, typer.Option(min=1, help="Output length, tokens.")] = 128,
    duration: Annotated[
        float, typer.Option(min=0, help="Seconds per level (each client sends at least one).")
    ] = 60.0,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the server's API key.")
    ] = None,
    plot_file: Annotated[
        str | None, typer.Option("--plot", help="Write the Pareto plot (.png or .svg).")
    ] = None,
    save: Annotated[
        str | None,
        typer.Option(
            help="Store the best unflagged throughput in \\[factories.NAME] of --config, "
            "so the gateway prices local tokens from it."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Measure tokens/s, TTFT, TPOT, interactivity and $/Mtok per concurrency level.

    --factory names a config profile (with --config) or a catalog box (e.g. cpu-box).

    Example: tokenomy factory measure --endpoint http://127.0.0.1:8000/v1 --model local
    --concurrency 1,2,4 --isl 256 --osl 64 --duration 30 --factory cpu-box --plot p.png
    """
    import os

    levels = _levels(concurrency)
    if plot_file is not None and not plot_file.endswith((".png", ".svg")):
        raise fail("--plot must end in .png or .svg")
    if save is not None and not factory.config:
        raise fail("--save needs --config (the file whose [factories.NAME] gets the numbers)")
    profile = _profile(factory)
    api_key = os.environ.get(api_key_env) if api_key_env else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=fmt is not OutputFormat.table,
    ) as bar:
        tasks = {c: bar.add_task(f"conc {c}: waiting", total=duration or 1) for c in levels}

        def progress(conc: int, done: int, elapsed: float) -> None:
            bar.update(
                tasks[conc],
                completed=min(elapsed, duration or 1),
                description=f"conc {conc}: {done} request(s)",
            )

        try:
            points, exact = asyncio.run(
                measure(
                    endpoint,
                    model,
                    levels=levels,
                    isl=isl,
                    osl=osl,
                    duration=duration,
                    api_key=api_key,
                    progress=progress,
                )
            )
        except OSError as exc:
            raise fail(f"cannot reach {endpoint}: {exc}") from exc
        for c in levels:
            bar.update(tasks[c], completed=duration or 1)
    table = rows(points, profile)
    if not exact:
        err_console.print(
            "note: the server has no /tokenize: prompts were sized approximately "
            "(measured_isl shows the real input length)"
        )
    if plot_file is not None:
        label = profile.label if profile is not None else endpoint
        plot(table, plot_file, title=f"{model} on {label}: isl {isl}, osl {osl}")
    if save is not None:
        _save(factory, save, table, profile, isl=isl, osl=osl)
    if fmt is OutputFormat.table:
        shown = [{k: _cell(r[k]) for k in _TABLE_KEYS} for r in table]
        render(shown, fmt, title=f"{model} at {endpoint} (isl {isl}, osl {osl})")
    else:
        render(table, fmt)


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "; ".join(value) or "-"
    return "-" if value is None else value


def _profile(factory: FactoryFlags) -> FactoryProfile | None:
    """The profile to cost tokens with: config factory, else a catalog box of that name."""
    if (
        factory.factory_name is None
        and factory.gpu is None
        and not any(v is not None for v in factory.values.values())
    ):
        return None
    flags = factory
    if factory.factory_name is not None and factory.gpu is None:
        in_config = False
        if factory.config:
            from tokenomy.config import load_config
            from tokenomy.errors import ConfigError

            with fail_on(ConfigError):
                in_config = factory.factory_name in load_config(factory.config).factories
        if not in_config:  # --factory cpu-box: a catalog box
            flags = FactoryFlags(factory.factory_name, None, factory.config, factory.values)
    return flags.profile()


def _save(
    factory: FactoryFlags,
    name: str,
    table: list[dict[str, Any]],
    profile: FactoryProfile | None,
    *,
    isl: int,
    osl: int,
) -> None:
    best = best_point(table)
    if best is None:
        raise fail("nothing saved: every point is flagged")
    assert factory.config is not None
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    note = (
        f"measured by tokenomy factory measure on {stamp}: conc {best['conc']}, "
        f"isl {isl}, osl {osl}"
    )
    with fail_on(ValueError, OSError):
        save_throughput(factory.config, name, best, gpu=profile.gpu if profile else None, note=note)
    err_console.print(
        f"saved throughput {best['tput_per_gpu']} tokens/s per GPU (conc {best['conc']}) "
        f"to [factories.{name}] in {factory.config}"
    )


def factory_group(factory_cmd: Callable[..., None], name: str = "factory") -> typer.Typer:
    """``factory`` as a group: ``tokenomy factory [flags]`` still runs ``factory_cmd``;
    ``tokenomy factory measure ...`` runs the benchmark."""
    group = typer.Typer(
        name=name,
        invoke_without_command=True,
        no_args_is_help=False,
        help=factory_cmd.__doc__,
    )
    sig = inspect.signature(factory_cmd)
    ctx_param = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )

    def callback(ctx: typer.Context, **kwargs: Any) -> None:
        if ctx.invoked_subcommand is None:
            factory_cmd(**kwargs)

    callback.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[ctx_param, *sig.parameters.values()]
    )
    callback.__annotations__ = {
        "ctx": typer.Context,
        **{p.name: p.annotation for p in sig.parameters.values()},
    }
    callback.__doc__ = factory_cmd.__doc__
    group.callback()(callback)
    group.command("measure")(measure_cmd)
    return group
