"""Live traffic of this process over the last minute, for ``tokenomy top`` and dashboards.

Calls are counted in one-second buckets (the last ``HORIZON_S`` kept), per (org, team,
agent, model), so a snapshot over any window up to a minute costs a walk over at most
that many small dictionaries, never the ledger. Served by the admin API at
``GET /admin/v1/stats/live?window=10``; a team admin sees only its team. Each process
counts its own calls (with several replicas, ask each one, or use /metrics).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from tokenomy.events import UsageEvent
from tokenomy.money import nanos_str

HORIZON_S = 60
TOP_N = 10
_SAMPLES_PER_S = 1000  # latencies kept per second for the percentiles

_Key = tuple[str, str, str, str]  # org, team, agent, model


class _Second:
    __slots__ = ("latencies", "second", "traffic")

    def __init__(self, second: int) -> None:
        self.second = second
        # key → [requests, errors, tokens, cost nanos]
        self.traffic: dict[_Key, list[int]] = {}
        self.latencies: list[tuple[str, str, float]] = []  # org, team, milliseconds


class LiveStats:
    """The observer: counts each recorded call in the bucket of its second."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._ring: list[_Second | None] = [None] * HORIZON_S
        self.started_ms = int(clock() * 1000)

    def _bucket(self, second: int) -> _Second:
        slot = second % HORIZON_S
        b = self._ring[slot]
        if b is None or b.second != second:
            b = self._ring[slot] = _Second(second)
        return b

    def on_event(self, ev: UsageEvent, overhead_s: float) -> None:
        b = self._bucket(int(self._clock()))
        key = (ev.org, ev.team, ev.agent, ev.model)
        row = b.traffic.get(key)
        if row is None:
            row = b.traffic[key] = [0, 0, 0, 0]
        row[0] += 1
        if ev.status >= 400 or ev.error_kind:
            row[1] += 1
        row[2] += ev.usage.input_tokens + ev.usage.output_tokens
        row[3] += ev.cost_nanos or 0
        if len(b.latencies) < _SAMPLES_PER_S:
            b.latencies.append((ev.org, ev.team, ev.latency_ms))

    def snapshot(
        self, window_s: int = 10, *, org: str | None = None, team: str | None = None
    ) -> dict[str, Any]:
        """Rates over the last ``window_s`` complete seconds (and the current one).

        ``org``/``team``: only that team's calls (a team admin's view).
        """
        window_s = max(1, min(window_s, HORIZON_S - 1))
        now = self._clock()
        second = int(now)
        # The current second is partly over: the window spans whole seconds before it
        # plus the elapsed part of this one.
        span = window_s - 1 + (now - second) or 1.0
        first = second - window_s + 1
        totals = [0, 0, 0, 0]
        groups: dict[str, dict[str, list[int]]] = {"teams": {}, "agents": {}, "models": {}}
        latencies: list[float] = []
        for b in self._ring:
            if b is None or not first <= b.second <= second:
                continue
            for (o, t, agent, model), row in b.traffic.items():
                if team is not None and (o, t) != (org, team):
                    continue
                for i in range(4):
                    totals[i] += row[i]
                for name, value in (("teams", t), ("agents", agent), ("models", model)):
                    g = groups[name].setdefault(value, [0, 0, 0, 0])
                    for i in range(4):
                        g[i] += row[i]
            latencies.extend(
                ms for o, t, ms in b.latencies if team is None or (o, t) == (org, team)
            )
        latencies.sort()
        return {
            "window_s": window_s,
            "now_ms": int(now * 1000),
            "process": {"pid": os.getpid(), "started_ms": self.started_ms},
            **_rates(totals, span),
            "p50_ms": _percentile(latencies, 0.50),
            "p99_ms": _percentile(latencies, 0.99),
            "top": {name: _top(rows.items(), span) for name, rows in groups.items()},
        }


def _rates(row: list[int], span: float) -> dict[str, Any]:
    requests, errors, tokens, nanos = row
    per_s = Decimal(nanos) / Decimal(span) / Decimal(1_000_000_000)
    return {
        "requests": requests,
        "errors": errors,
        "tokens": tokens,
        "cost_usd": nanos_str(nanos),
        "requests_per_s": round(requests / span, 3),
        "tokens_per_s": round(tokens / span, 1),
        "cost_usd_per_hour": str((per_s * 3600).quantize(Decimal("0.000001"))),
        "error_rate": round(errors / requests, 4) if requests else 0.0,
    }


def _top(rows: Iterable[tuple[str, list[int]]], span: float) -> list[dict[str, Any]]:
    ranked = sorted(rows, key=lambda kv: (-kv[1][3], -kv[1][0], kv[0]))[:TOP_N]
    return [{"name": name, **_rates(row, span)} for name, row in ranked]


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return round(sorted_values[i], 3)


LIVE_KEY: web.AppKey[LiveStats] = web.AppKey("tokenomy_live_stats", LiveStats)
