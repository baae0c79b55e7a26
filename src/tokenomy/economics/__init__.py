"""Token-factory economics: production cost, capacity planning, break-even, forecast.

The main entry points (the submodules hold the details, which the CLI's tables and the
tests also import directly):

* ``build_profile`` / ``profile_from_table`` → ``FactoryProfile``; ``load_catalog``
* ``factory_cost(profile)`` → ``FactoryCost`` ($/h split, $/Mtok, tokens/s per MW, J/token)
* ``factory_token_prices(settings.factories)`` → ``{name: (input $/Mtok, output $/Mtok)}``
  — what the gateway charges for tokens of a deployment with ``factory = "NAME"``
* ``plan_throughput`` / ``plan_flops`` / ``plan_scenario`` → ``PlanResult``
* ``breakeven(profile, api_price, demand)`` → ``BreakevenResult`` (payback, NPV,
  sensitivity); ``workload`` reads the ledger's demand, effective and list prices
* ``forecast(rows, ...)`` → ``SeriesForecast`` list (``trend``: growth, weekdays, level
  shifts, fit quality); ``flag_budgets`` → ``BudgetFlag`` list

Money is Decimal throughout; docs/economics.md explains every formula and default.
"""

from __future__ import annotations

from tokenomy.economics.breakeven import (
    ApiPrice,
    BreakevenResult,
    MonthlyDemand,
    blended_api_price,
    breakeven,
    catalog_api_price,
    demand_from_rows,
)
from tokenomy.economics.catalog import Catalog, GpuSpec, load_catalog, parse_catalog
from tokenomy.economics.factory import (
    FactoryCost,
    crf,
    factory_cost,
    factory_token_prices,
    split_input_output,
)
from tokenomy.economics.forecast import (
    BudgetFlag,
    BudgetToProject,
    SeriesForecast,
    budget_from_record,
    daily_series,
    flag_budgets,
    forecast,
    forecast_series,
    project_budget,
)
from tokenomy.economics.plan import (
    SCENARIOS,
    TOKENS_PER_TASK_PRESETS,
    PlanResult,
    plan_flops,
    plan_scenario,
    plan_throughput,
)
from tokenomy.economics.profiles import (
    FactoryProfile,
    build_profile,
    profile_from_table,
    validate_factory_table,
)
from tokenomy.economics.trend import Fit, fit_auto, fit_growth

__all__ = [
    "SCENARIOS",
    "TOKENS_PER_TASK_PRESETS",
    "ApiPrice",
    "BreakevenResult",
    "BudgetFlag",
    "BudgetToProject",
    "Catalog",
    "FactoryCost",
    "FactoryProfile",
    "Fit",
    "GpuSpec",
    "MonthlyDemand",
    "PlanResult",
    "SeriesForecast",
    "blended_api_price",
    "breakeven",
    "budget_from_record",
    "build_profile",
    "catalog_api_price",
    "crf",
    "daily_series",
    "demand_from_rows",
    "factory_cost",
    "factory_token_prices",
    "fit_auto",
    "fit_growth",
    "flag_budgets",
    "forecast",
    "forecast_series",
    "load_catalog",
    "parse_catalog",
    "plan_flops",
    "plan_scenario",
    "plan_throughput",
    "profile_from_table",
    "project_budget",
    "split_input_output",
    "validate_factory_table",
]
