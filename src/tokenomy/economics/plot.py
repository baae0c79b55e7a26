"""Forecast charts as PNG or SVG (matplotlib's Agg canvas; no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from tokenomy.economics.forecast import SeriesForecast

PLOT_FORMATS = (".png", ".svg")
MAX_GROUPS = 8  # beyond this a chart is unreadable; the table still lists every group


def plot_forecasts(forecasts: Sequence[SeriesForecast], path: str | Path) -> Path:
    """Draw history, fitted trend and prediction band, one panel per metric.

    The format follows the file extension (``.png`` or ``.svg``).

    Raises:
        ValueError: unsupported extension or nothing to plot.
    """
    # Import here: matplotlib takes ~0.3 s to import, and only --plot needs it.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"plot: file must end in .png or .svg (got {target.name!r})")
    if not forecasts:
        raise ValueError("plot: nothing to plot (no forecast could be fitted)")
    metrics = [m for m in ("tokens", "cost") if any(f.metric == m for f in forecasts)]
    fig = Figure(figsize=(10, 4 * len(metrics)), layout="constrained")
    FigureCanvasAgg(fig)
    for row, metric in enumerate(metrics, start=1):
        ax = fig.add_subplot(len(metrics), 1, row)
        series = [f for f in forecasts if f.metric == metric][:MAX_GROUPS]
        for fc in series:
            label = ", ".join(f"{k}={v}" for k, v in fc.group.items()) or "all"
            history_days = [fc.start + timedelta(days=i) for i in range(len(fc.history))]
            days = np.array(history_days, dtype="datetime64[D]")
            line = ax.plot(
                days,
                [float(v) for v in fc.history],
                marker=".",
                linewidth=1,
                label=f"{label} (actual)",
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
                    label=f"{label} ({fc.fit.model} fit)",
                )
                ax.fill_between(
                    pdays,
                    [float(p.low) for p in fc.projection],
                    [float(p.high) for p in fc.projection],
                    color=colour,
                    alpha=0.15,
                    label=f"{label} {fc.level:.0%} interval",
                )
        unit = "tokens per day" if metric == "tokens" else "USD per day"
        ax.set_title(f"Daily {metric}: history and forecast")
        ax.set_ylabel(unit)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
        fig.autofmt_xdate()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format=suffix[1:])
    return target
