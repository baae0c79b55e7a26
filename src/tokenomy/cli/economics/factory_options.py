"""The token-factory options shared by ``factory``, ``plan`` and ``breakeven``, declared once.

``@with_factory_options()`` adds the options to a command's signature (Typer reads it) and
hands the command one ``FactoryFlags`` object instead of seventeen parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, get_type_hints

import typer

from tokenomy.cli.economics.output import fail_on
from tokenomy.economics import FactoryProfile, build_profile
from tokenomy.economics.decimals import parse_decimal
from tokenomy.economics.profiles import NUMERIC_FIELDS
from tokenomy.errors import ConfigError


def _decimal(flag: str, field: str) -> Any:
    return Annotated[
        Decimal | None,
        typer.Option(
            flag,
            parser=parse_decimal,
            show_default=False,
            help=f"{NUMERIC_FIELDS[field].description.capitalize()}.",
        ),
    ]


# name → annotation; every option defaults to None ("not given": the profile decides).
_OPTIONS: dict[str, Any] = {
    "gpu": Annotated[
        str | None,
        typer.Option(
            "--gpu",
            help="Catalog GPU/box: h100-sxm, h200, b200, gb200, mi300x, mi325x, mi355x, "
            "rtx-4090-ws, dgx-spark, cpu-box (see `tokenomy factory --list`).",
        ),
    ],
    "capex": _decimal("--capex", "capex"),
    "rent_per_hour": _decimal("--rent-per-hour", "rent_per_hour"),
    "rent_includes_power": Annotated[
        bool | None,
        typer.Option(
            "--rent-includes-power/--rent-excludes-power",
            show_default=False,
            help="Whether --rent-per-hour already pays the electricity [default: includes].",
        ),
    ],
    "life_years": _decimal("--life-years", "life_years"),
    "cost_of_capital": _decimal("--cost-of-capital", "cost_of_capital"),
    "power_kw": _decimal("--power-kw", "power_kw"),
    "avg_draw": _decimal("--avg-draw", "avg_draw"),
    "pue": _decimal("--pue", "pue"),
    "electricity": _decimal("--electricity", "electricity"),
    "ops_per_year": _decimal("--ops-per-year", "ops_per_year"),
    "throughput": _decimal("--throughput", "throughput"),
    "utilization": _decimal("--utilization", "utilization"),
    "gpus": Annotated[
        int | None,
        typer.Option(
            "--gpus",
            min=1,
            show_default=False,
            help="Number of GPUs (a whole box is 1) [default: 1].",
        ),
    ],
    "input_cost_ratio": _decimal("--input-cost-ratio", "input_cost_ratio"),
    "factory_name": Annotated[
        str | None,
        typer.Option(
            "--factory", help="Use the config's [factories.NAME] profile (needs --config)."
        ),
    ],
    "config": Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            envvar="TOKENOMY_CONFIG",
            help="TOML config with [factories.NAME] tables.",
        ),
    ],
}
_NOT_PROFILE_FIELDS = ("gpu", "factory_name", "config")


@dataclass(frozen=True, slots=True)
class FactoryFlags:
    """What the user said about the factory: a config profile, a catalog GPU, flag values."""

    gpu: str | None
    factory_name: str | None
    config: str | None
    values: dict[str, Any]  # profile field → value given on the command line

    def profile(
        self, *, require_throughput: bool = False, default_gpu: str | None = None
    ) -> FactoryProfile:
        """Config factory (if any), then catalog GPU, then flags; errors exit with a message."""
        with fail_on(ValueError, ConfigError):
            return self._build(require_throughput, default_gpu)

    def _build(self, require_throughput: bool, default_gpu: str | None) -> FactoryProfile:
        layers: list[tuple[dict[str, Any], str]] = []
        name = self.factory_name or self.gpu or default_gpu or "custom"
        if self.factory_name:
            if not self.config:
                raise ValueError("--factory needs --config (or TOKENOMY_CONFIG)")
            from tokenomy.config import load_config

            settings = load_config(self.config)
            if self.factory_name not in settings.factories:
                known = ", ".join(sorted(settings.factories)) or "none"
                raise ValueError(
                    f"no [factories.{self.factory_name}] in {self.config} (known: {known})"
                )
            layers.append(
                (
                    dict(settings.factories[self.factory_name]),
                    f"config [factories.{self.factory_name}] {{key}}",
                )
            )
        elif self.gpu is None and default_gpu is not None:
            layers.append(({"gpu": default_gpu}, "default {key}"))
        given = {k: v for k, v in self.values.items() if v is not None}
        if self.gpu is not None:
            given["gpu"] = self.gpu
        layers.append((given, "flag {flag}"))
        return build_profile(name, layers, require_throughput=require_throughput)


def with_factory_options(
    exclude: Iterable[str] = (),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add the factory options (less ``exclude``) to a command taking ``factory: FactoryFlags``."""
    names = [n for n in _OPTIONS if n not in set(exclude)]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command).parameters.values()
            if p.name != "factory"
        ]
        added = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_OPTIONS[n]
            )
            for n in names
        ]
        # The factory options go before the command's trailing --db/--format in --help.
        tail = [p for p in own if p.name in ("db", "fmt")]
        params = [p for p in own if p not in tail] + added + tail

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            given = {n: kwargs.pop(n) for n in names}
            flags = FactoryFlags(
                given.get("gpu"),
                given.get("factory_name"),
                given.get("config"),
                {k: v for k, v in given.items() if k not in _NOT_PROFILE_FIELDS},
            )
            command(factory=flags, **kwargs)

        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
