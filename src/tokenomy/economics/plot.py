"""Forecast charts as PNG or SVG (matplotlib's Agg canvas; no display, no pyplot state).

One panel per metric (history, fitted trend, prediction band, a "today" line) and, when
budgets are given, one panel of each budget's cumulative spend against its limit. The
legend sits outside the plot, to its right; axes read 1.2M / 3.4G, not 1e9. At most
``MAX_GROUPS`` groups per panel (the largest by their last day): the others are named in
the second value returned, and the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.economics.forecast import BudgetFlag, SeriesForecast

PLOT_FORMATS = (".png", ".svg")
MAX_GROUPS = 8  # beyond this a chart is unreadable; the table still lists every group
MAX_BUDGETS = 6
_SCALES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def human_axis(value: float, usd: bool = False) -> str:
    """``1.5M``, ``$2.3k``, ``850``: tick labels people read at a glance."""
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    prefix = "$" if usd else ""
    for scale, suffix in _SCALES:
        if magnitude >= scale:
            return f"{sign}{prefix}{magnitude / scale:.3g}{suffix}"
    return f"{sign}{prefix}{magnitude:.3g}"


def _chosen(
    forecasts: Sequence[SeriesForecast], metric: str
) -> tuple[list[SeriesForecast], list[str]]:
    series = [f for f in forecasts if f.metric == metric]
    series.sort(key=lambda f: -(f.history[-1] if f.history else Decimal(0)))
    return series[:MAX_GROUPS], [f"{f.label} ({metric})" for f in series[MAX_GROUPS:]]


def build_figure(
    forecasts: Sequence[SeriesForecast],
    *,
    today: date | None = None,
    budgets: Sequence[BudgetFlag] = (),
) -> tuple[Any, list[str]]:
    """The matplotlib Figure and the groups left out of it."""
    # Import here: matplotlib takes ~0.3 s to import, and only --plot needs it.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not forecasts and not budgets:
        raise ValueError("plot: nothing to plot (no forecast could be fitted)")
    metrics = [m for m in ("tokens", "cost") if any(f.metric == m for f in forecasts)]
    shown_budgets = list(budgets)[:MAX_BUDGETS]
    panels = len(metrics) + (1 if shown_budgets else 0)
    fig = Figure(figsize=(12, 4 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    dropped: list[str] = []
    row = 0
    for metric in metrics:
        row += 1
        ax = fig.add_subplot(panels, 1, row)
        series, left_out = _chosen(forecasts, metric)
        dropped += left_out
        for fc in series:
            history_days = [fc.start + timedelta(days=i) for i in range(len(fc.history))]
            days = np.array(history_days, dtype="datetime64[D]")
            line = ax.plot(
                days,
                [float(v) for v in fc.history],
                marker=".",
                linewidth=1,
                label=f"{fc.label} (actual)",
            )[0]
            colour = line.get_color()
            fitted = [float(fc.predict(d)[0]) for d in history_days]
            ax.plot(days, fitted, linestyle=":", color=colour, linewidth=1)
            if fc.projection:
                pdays = np.array([p.day for p in fc.projection], dtype="datetime64[D]")
                ax.plot(
                    pdays,
                    [float(p.point) for p in fc.projection],
                    linestyle="--",
                    color=colour,
                    label=f"{fc.label} ({fc.fit.model} fit, {fc.trend})",
                )
                ax.fill_between(
                    pdays,
                    [float(p.low) for p in fc.projection],
                    [float(p.high) for p in fc.projection],
                    color=colour,
                    alpha=0.15,
                    label=f"{fc.label} {fc.level:.0%} interval",
                )
        usd = metric == "cost"
        _today_line(ax, today, np)
        ax.set_title(f"Daily {metric}: history and forecast")
        ax.set_ylabel("USD per day" if usd else "tokens per day")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, usd=usd: human_axis(v, usd)))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if shown_budgets:
        row += 1
        ax = fig.add_subplot(panels, 1, row)
        for flag in shown_budgets:
            b = flag.budget
            name = b.name or ", ".join(f"{k}:{v}" for k, v in b.scope.items()) or "all"
            start = flag.path[0][0] if flag.path else today
            days = np.array(
                [start, *[d for d, _, _ in flag.path]] if start else [], dtype="datetime64[D]"
            )
            line = ax.plot(
                days,
                [float(b.spent), *[float(p) for _, p, _ in flag.path]],
                linestyle="--",
                label=f"{name}: spent + forecast",
            )[0]
            ax.plot(
                days,
                [float(b.spent), *[float(h) for _, _, h in flag.path]],
                linestyle=":",
                color=line.get_color(),
                label=f"{name}: upper bound",
            )
            ax.axhline(
                float(b.limit),
                color=line.get_color(),
                linewidth=1.5,
                label=f"{name}: limit {human_axis(float(b.limit), b.unit == 'usd')}",
            )
        _today_line(ax, today, np)
        ax.set_title("Budgets: cumulative spend in the period against the limit")
        unit_usd = all(f.budget.unit == "usd" for f in shown_budgets)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, usd=unit_usd: human_axis(v, usd)))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        dropped += [
            f"budget {f.budget.name or f.budget.scope}" for f in list(budgets)[MAX_BUDGETS:]
        ]
    for ax in fig.axes:  # not autofmt_xdate: it hides the dates of all but the last panel
        ax.tick_params(axis="x", labelrotation=30)
    return fig, dropped


def _today_line(ax: Any, today: date | None, np: Any) -> None:
    if today is not None:
        ax.axvline(np.datetime64(today, "D"), color="grey", linewidth=1, label=f"today {today}")


def plot_forecasts(
    forecasts: Sequence[SeriesForecast],
    path: str | Path,
    *,
    today: date | None = None,
    budgets: Sequence[BudgetFlag] = (),
) -> tuple[Path, list[str]]:
    """Write the chart; returns its path and the groups not drawn (beyond ``MAX_GROUPS``).

    The format follows the file extension (``.png`` or ``.svg``; SVG text stays text).

    Raises:
        ValueError: unsupported extension or nothing to plot.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"plot: file must end in .png or .svg (got {target.name!r})")
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig, dropped = build_figure(forecasts, today=today, budgets=budgets)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=suffix[1:])
    return target, dropped
