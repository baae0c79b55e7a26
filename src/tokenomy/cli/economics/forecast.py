"""``tokenomy forecast``: fit daily tokens and cost, project them, flag budgets at risk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer

from tokenomy import clock
from tokenomy.budgets.report import OUTLOOK_HISTORY_DAYS, outlooks
from tokenomy.budgets.storage import list_budgets
from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.economics.output import fail_on, print_assumptions, print_notes, short
from tokenomy.cli.output import FormatOption, OutputFormat, render, to_json
from tokenomy.economics import forecast
from tokenomy.errors import LedgerError
from tokenomy.ledger.reports import parse_where
from tokenomy.ledger.store import Store


def forecast_cmd(
    by: Annotated[
        str | None,
        typer.Option(
            help="Forecast per group: comma list of org, team, user, agent, model, provider."
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where", help="Filter FIELD=VALUE (repeatable), e.g. --where team=research."
        ),
    ] = None,
    history: Annotated[int, typer.Option(min=3, help="Days of history to fit.")] = 90,
    horizon: Annotated[int, typer.Option(min=1, help="Days to project.")] = 30,
    level: Annotated[float, typer.Option(help="Prediction interval level.")] = 0.95,
    fit: Annotated[str, typer.Option(help="Trend: exp (growth rate) or linear.")] = "exp",
    metric: Annotated[str, typer.Option(help="tokens, cost or both.")] = "both",
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Forecast as of this UTC day (history ends the day before) [default: today]."
        ),
    ] = None,
    plot_file: Annotated[
        str | None, typer.Option("--plot", help="Also write a chart: FILE.png or FILE.svg.")
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit daily tokens and cost (trend, weekdays, level shifts), project them, flag budgets.

    Example: tokenomy forecast --by team --horizon 30 --plot forecast.png
    Example: tokenomy forecast --where model=gpt-4o --fit linear --format json
    """
    with fail_on(ValueError, LedgerError):
        if fit not in ("exp", "linear"):
            raise ValueError(f"--fit: exp or linear, got {fit!r}")
        metrics = {"both": ("tokens", "cost"), "tokens": ("tokens",), "cost": ("cost",)}.get(metric)
        if metrics is None:
            raise ValueError(f"--metric: tokens, cost or both, got {metric!r}")
        now = _ms(date.fromisoformat(as_of)) if as_of else clock.now_ms()
        today = datetime.fromtimestamp(now / 1000, UTC).date()
        fields = [f.strip() for f in (by or "").split(",") if f.strip()]
        filters = parse_where(where or [])
        end, start = today - timedelta(days=1), today - timedelta(days=history)
        with ledger(db) as store:
            rows = store.aggregate(_ms(start), _ms(today), [*fields, "day"], filters or None)
            forecasts, notes = forecast(
                rows,
                fields,
                start,
                end,
                horizon,
                level=level,
                model=fit,  # type: ignore[arg-type]
                metrics=metrics,  # type: ignore[arg-type]
            )
            flags, budget_notes = _budget_flags(store, now, as_of is not None, level)
        notes += [
            f"{fc.label} {fc.metric}: poor fit ({fc.poor_fit})" for fc in forecasts if fc.poor_fit
        ]
        notes += budget_notes
        if plot_file:
            from tokenomy.economics.plot import plot_forecasts

            written, dropped = plot_forecasts(forecasts, plot_file, today=today, budgets=flags)
            notes.append(f"chart written to {written}")
            if dropped:
                notes.append(f"chart: not drawn (largest groups first): {', '.join(dropped)}")
    assumptions: list[dict[str, Any]] = [
        {
            "name": "history",
            "value": f"{start.isoformat()} .. {end.isoformat()}",
            "unit": "UTC days",
            "source": "--history (full days only; today is partial)",
        },
        {
            "name": "fit",
            "value": fit,
            "unit": "",
            "source": "--fit: OLS on ln(daily) or daily, + weekday effects and one level "
            "shift where the BIC supports them",
        },
        {"name": "level", "value": level, "unit": "", "source": "Student-t prediction interval"},
        {"name": "horizon", "value": horizon, "unit": "days", "source": "--horizon"},
        {
            "name": "budget_history",
            "value": OUTLOOK_HISTORY_DAYS,
            "unit": "days",
            "source": "budgets: spent from the ledger, projected as `budgets list` does",
        },
        {
            "name": "filters",
            "value": ", ".join(f"{k}={v}" for k, v in filters.items()) or "none",
            "unit": "",
            "source": "--where",
        },
    ]
    if fmt is OutputFormat.json:
        typer.echo(
            to_json(
                {
                    "forecasts": [fc.to_dict() for fc in forecasts],
                    "budgets": [f.to_dict() for f in flags],
                    "assumptions": assumptions,
                    "notes": notes,
                }
            )
        )
        return
    if fmt is OutputFormat.csv:
        render([_csv_row(fc, fields) for fc in forecasts], fmt)
        return
    title = (
        f"Forecast: day {horizon} ahead, {horizon}-day total, calendar month "
        f"({level:.0%} interval; point = median day)"
    )
    render(
        [_table_row(fc, fields, horizon) for fc in forecasts],
        fmt,
        title=title,
        columns=[
            *fields,
            "metric",
            "trend",
            "growth",
            "doubling",
            "r2",
            "mape",
            "yesterday",
            f"day +{horizon}",
            "interval",
            "total",
            "total (mean)",
            "month to date",
            "month (total)",
        ],
    )
    if flags:
        render(
            [_budget_row(f) for f in flags],
            fmt,
            title="Budgets (spent: ledger)",
            columns=["budget", "limit", "spent", "period_end", "projected", "high", "runs_out_on"],
        )
    print_assumptions(assumptions)
    print_notes(notes)


def _table_row(fc: Any, fields: list[str], horizon: int) -> dict[str, Any]:
    d = fc.to_dict()
    unit = fc.unit
    growth = (
        f"{d['daily_growth'] * 100:+.2f}%/d"
        if d["fit"] == "exp"
        else f"{short(d['daily_growth'], unit)}/d"
    )
    if d["level_shift_day"]:
        growth += f", x{d['level_shift_factor']:.2f} from {d['level_shift_day']}"
    return {
        **{f: d.get(f, "") for f in fields},
        "metric": unit,
        "trend": d["trend"] + (" (poor fit)" if d["poor_fit"] else ""),
        "growth": growth,
        "doubling": f"{d['doubling_days']} d" if d["doubling_days"] is not None else "-",
        "r2": f"{d['r2']:.2f}",
        "mape": f"{d['mape'] * 100:.1f}%" if d["mape"] is not None else "n/a",
        "yesterday": short(d["last_day_actual"], unit),
        f"day +{horizon}": short(d["horizon_end_point"], unit),
        "interval": f"{short(d['horizon_end_low'], unit)}-{short(d['horizon_end_high'], unit)}",
        "total": short(d["horizon_total"], unit),
        "total (mean)": short(d["horizon_total_mean"], unit),
        "month to date": f"{d['month']}: {short(d['month_to_date'], unit)}",
        "month (total)": short(d["month_total_mean"], unit),
    }


_CSV_KEYS = (
    "metric",
    "unit",
    "fit",
    "trend",
    "daily_growth",
    "doubling_days",
    "level_shift_day",
    "level_shift_factor",
    "r2",
    "mape",
    "poor_fit",
    "last_day_actual",
    "horizon_end",
    "horizon_end_point",
    "horizon_end_mean",
    "horizon_end_low",
    "horizon_end_high",
    "horizon_total",
    "horizon_total_mean",
    "horizon_total_low",
    "horizon_total_high",
    "month",
    "month_to_date",
    "month_rest",
    "month_total",
    "month_total_mean",
)


def _csv_row(fc: Any, fields: list[str]) -> dict[str, Any]:
    d = fc.to_dict()
    return {**{f: d.get(f, "") for f in fields}, **{k: d[k] for k in _CSV_KEYS}}


def _budget_row(flag: Any) -> dict[str, Any]:
    d = flag.to_dict()
    unit = d["unit"]
    return {
        "budget": f"{d['budget']} ({unit})",
        "limit": short(d["limit"], unit),
        "spent": short(d["spent"], unit),
        "period_end": d["period_end"],
        "projected": short(d["projected_total"], unit),
        "high": short(d["projected_high"], unit),
        "runs_out_on": d["exhausted_on"] or ("maybe" if d["may_run_out"] else "no"),
    }


def _budget_flags(
    store: Store, now_ms: int, as_of: bool, level: float
) -> tuple[list[Any], list[str]]:
    """Each budget projected to the end of its period: the model ``budgets list`` uses."""
    flags: list[Any] = []
    notes: list[str] = []
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    for o in outlooks(
        store, list_budgets(store, "budget"), now_ms=now_ms, as_of=as_of, level=level
    ):
        if o.note:
            notes.append(f"budget {o.note}")
        if o.flag is not None and o.flag.budget.period_end >= today:
            flags.append(o.flag)
    flags.sort(key=lambda f: (not f.runs_out, not f.may_run_out, f.exhausted_on or date.max))
    return flags, notes


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
