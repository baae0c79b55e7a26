"""``GET /metrics``: the gateway's counters in the Prometheus text format.

Per call the observer does one dictionary look-up (the series of the call's label values)
and a few integer additions; prometheus-client only formats them when Prometheus
scrapes. Cost is counted in integer nano-USD and turned into a float of USD only in the
exposition, as Prometheus holds every value as a float anyway.

Labels come from ``[metrics] labels`` (default: org, team, model, provider, location;
never a task or user unless listed). Each process exposes its own counters: with several
replicas (or processes behind one port) Prometheus scrapes each one and ``sum()``s.

Families (each with the configured labels unless said otherwise):

* ``tokenomy_tokens_total{kind}`` — kind ``input`` (all input, cached included, as in
  the ledger), ``cached``, ``cache_write``, ``output``, ``reasoning``
* ``tokenomy_cost_usd_total`` — calls with a known price
* ``tokenomy_requests_total{status}`` — HTTP status answered
* ``tokenomy_request_duration_seconds``, ``tokenomy_overhead_seconds`` (the gateway's
  own time, see ``timing``), ``tokenomy_ttft_seconds`` (streams) — histograms
* ``tokenomy_fallbacks_total{reason}`` — calls served by another deployment or model
* ``tokenomy_budget_remaining{scope, unit, period}`` — from the database, every process
  sees the same (read at most every ``BUDGET_TTL_S``)
* ``tokenomy_reservations_in_flight{scope, unit}`` — held by this process's calls in flight
* ``tokenomy_breaker_open{deployment}`` — 1 while the routing circuit breaker is open
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from tokenomy.budgets import storage
from tokenomy.budgets.engine import BudgetEngine
from tokenomy.budgets.model import BUDGET
from tokenomy.events import UsageEvent
from tokenomy.ledger.store import Store

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger("tokenomy.observe")

NANOS = 1_000_000_000
TOKEN_KINDS = ("input", "cached", "cache_write", "output", "reasoning")
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
BUDGET_TTL_S = 5.0

# Every family this module exposes (the Grafana dashboard's test checks against it).
FAMILIES = (
    "tokenomy_tokens_total",
    "tokenomy_cost_usd_total",
    "tokenomy_requests_total",
    "tokenomy_request_duration_seconds",
    "tokenomy_overhead_seconds",
    "tokenomy_ttft_seconds",
    "tokenomy_fallbacks_total",
    "tokenomy_budget_remaining",
    "tokenomy_reservations_in_flight",
    "tokenomy_breaker_open",
)


class _Histogram:
    __slots__ = ("bounds", "counts", "les", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.les = _les(bounds)
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


@functools.cache
def _les(bounds: tuple[float, ...]) -> tuple[str, ...]:
    return (*(f'le="{float(b)!r}"' for b in bounds), 'le="+Inf"')


class _Series:
    """Everything counted for one combination of label values."""

    __slots__ = (
        *("braces", "labels", "cost_nanos", "duration", "fallbacks", "overhead", "statuses"),
        *("tokens", "ttft"),
    )

    def __init__(self, names: tuple[str, ...], values: tuple[str, ...]) -> None:
        text = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
        self.labels = text + "," if text else ""  # before one more label
        self.braces = "{" + text + "}" if text else ""  # the labels alone
        self.tokens = [0, 0, 0, 0, 0]  # in the order of TOKEN_KINDS
        self.cost_nanos = 0
        self.statuses: dict[int, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.duration = _Histogram(DURATION_BUCKETS)
        self.overhead = _Histogram(OVERHEAD_BUCKETS)
        self.ttft: _Histogram | None = None  # streams only


BreakerState = Callable[[], dict[str, bool]]

_KIND_LABELS = tuple(f'kind="{kind}"' for kind in TOKEN_KINDS)
_HISTOGRAMS = (
    ("tokenomy_request_duration_seconds", "duration", "Call duration."),
    (
        "tokenomy_overhead_seconds",
        "overhead",
        "The gateway's own time per call (not waiting on the upstream).",
    ),
    ("tokenomy_ttft_seconds", "ttft", "Time to first token (streams)."),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _head(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


def _histogram(w: Callable[[str], object], name: str, s: _Series, hist: _Histogram) -> None:
    running = 0
    for le, n in zip(hist.les, hist.counts, strict=True):
        running += n
        w(f"{name}_bucket{{{s.labels}{le}}} {running}\n")
    w(f"{name}_sum{s.braces} {hist.total!r}\n{name}_count{s.braces} {running}\n")


class Metrics:
    """The Prometheus observer: counts every recorded call, formats on scrape."""

    def __init__(
        self,
        labels: Sequence[str],
        *,
        store: Store | None = None,
        budgets: BudgetEngine | None = None,
        breakers: BreakerState | None = None,
    ) -> None:
        self.labels = tuple(labels)
        if len(self.labels) == 1:
            one = attrgetter(self.labels[0])
            self._key: Callable[[UsageEvent], tuple[str, ...]] = lambda ev: (one(ev),)
        elif self.labels:
            self._key = attrgetter(*self.labels)
        else:
            self._key = lambda ev: ()
        self.series: dict[tuple[str, ...], _Series] = {}
        self.attach(store=store, budgets=budgets, breakers=breakers)
        self._budget_rows: list[tuple[str, str, str, float]] = []
        self._budget_read = -BUDGET_TTL_S
        self._registry: Any = None  # prometheus-client's, made on the first scrape

    def attach(
        self,
        *,
        store: Store | None = None,
        budgets: BudgetEngine | None = None,
        breakers: BreakerState | None = None,
    ) -> None:
        """Where the state gauges come from (budgets, reservations, breakers)."""
        self.store = store
        self.budgets = budgets
        self.breakers = breakers

    # -- per call ------------------------------------------------------------------------
    def on_event(self, ev: UsageEvent, overhead_s: float) -> None:
        key = self._key(ev)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series(self.labels, key)
        u = ev.usage
        t = s.tokens
        t[0] += u.input_tokens
        t[1] += u.cached_tokens
        t[2] += u.cache_write_tokens
        t[3] += u.output_tokens
        t[4] += u.reasoning_tokens
        if ev.cost_nanos:
            s.cost_nanos += ev.cost_nanos
        statuses = s.statuses
        statuses[ev.status] = statuses.get(ev.status, 0) + 1
        s.duration.observe(ev.latency_ms / 1000)
        s.overhead.observe(overhead_s)
        if ev.ttft_ms is not None:
            if s.ttft is None:
                s.ttft = _Histogram(TTFT_BUCKETS)
            s.ttft.observe(ev.ttft_ms / 1000)
        if ev.fallback_reason:
            s.fallbacks[ev.fallback_reason] = s.fallbacks.get(ev.fallback_reason, 0) + 1

    # -- on scrape -----------------------------------------------------------------------
    async def refresh(self) -> None:
        """Re-read the budgets' remaining amounts if older than ``BUDGET_TTL_S``."""
        if self.store is None or time.monotonic() - self._budget_read < BUDGET_TTL_S:
            return
        self._budget_read = time.monotonic()
        tz = self.budgets.tz if self.budgets is not None else "UTC"
        try:
            self._budget_rows = await asyncio.to_thread(_budget_rows, self.store, tz)
        except Exception as exc:  # the database is down: keep the last values
            log.warning("metrics: cannot read budgets (%s)", type(exc).__name__)

    def exposition(self) -> bytes:
        """The text format (version 0.0.4): the per-call families, then the state gauges.

        The per-call families can hold tens of thousands of series, so they are written
        here, with each series' label text escaped once when the series is created
        (prometheus-client validates and escapes every label of every sample on every
        scrape: 180 ms instead of ~15 ms at 10k series, see bench/metrics.py). The
        few state gauges go through prometheus-client.
        """
        from prometheus_client import generate_latest
        from prometheus_client.registry import CollectorRegistry

        if self._registry is None:  # imported on the first scrape: start-up stays fast
            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(self)  # a collector: prometheus-client calls collect()

        out: list[str] = []
        w = out.append
        series = list(self.series.values())
        w(_head("tokenomy_tokens_total", "counter", "Tokens by kind (input includes cached)."))
        for s in series:
            for kind, n in zip(_KIND_LABELS, s.tokens, strict=True):
                w(f"tokenomy_tokens_total{{{s.labels}{kind}}} {n}\n")
        w(_head("tokenomy_cost_usd_total", "counter", "Cost in USD of calls with a known price."))
        for s in series:
            w(f"tokenomy_cost_usd_total{s.braces} {s.cost_nanos / NANOS!r}\n")
        w(_head("tokenomy_requests_total", "counter", "Calls by HTTP status answered."))
        for s in series:
            for status, n in list(s.statuses.items()):
                w(f'tokenomy_requests_total{{{s.labels}status="{status}"}} {n}\n')
        w(_head("tokenomy_fallbacks_total", "counter", "Calls served by a fallback, by reason."))
        for s in series:
            for reason, n in list(s.fallbacks.items()):
                w(f'tokenomy_fallbacks_total{{{s.labels}reason="{_escape(reason)}"}} {n}\n')
        for name, attr, text in _HISTOGRAMS:
            w(_head(name, "histogram", text))
            for s in series:
                hist = getattr(s, attr)
                if hist is not None:
                    _histogram(w, name, s, hist)
        return "".join(out).encode() + generate_latest(self._registry)

    def collect(self) -> Iterator[Metric]:
        """The state gauges (prometheus-client's collector interface)."""
        yield from self._state()

    def _state(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        remaining = GaugeMetricFamily(
            "tokenomy_budget_remaining",
            "Budget left in the current period (USD or tokens), from the database.",
            labels=["scope", "unit", "period"],
        )
        for scope, unit, period, value in self._budget_rows:
            remaining.add_metric([scope, unit, period], value)
        yield remaining
        in_flight = GaugeMetricFamily(
            "tokenomy_reservations_in_flight",
            "Amount reserved on each budget by this process's calls in flight.",
            labels=["scope", "unit"],
        )
        if self.budgets is not None:
            for (scope, unit), amount in _reserved(self.budgets).items():
                in_flight.add_metric([scope, unit], amount / NANOS if unit == "usd" else amount)
        yield in_flight
        breaker = GaugeMetricFamily(
            "tokenomy_breaker_open",
            "1 while a deployment's circuit breaker is open.",
            labels=["deployment"],
        )
        if self.breakers is not None:
            for deployment, is_open in self.breakers().items():
                breaker.add_metric([deployment], 1 if is_open else 0)
        yield breaker


def _budget_rows(store: Store, tz: str) -> list[tuple[str, str, str, float]]:
    budgets = storage.list_budgets(store, BUDGET)
    out = []
    for st in storage.status(store, budgets, tz):
        b = st.budget
        left = st.remaining
        out.append((b.scope, b.unit, b.period, left / NANOS if b.unit == "usd" else float(left)))
    return out


def _reserved(engine: BudgetEngine) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for budget, reserved in engine.in_flight():
        key = (budget.scope, budget.unit)
        out[key] = out.get(key, 0) + reserved
    return out
