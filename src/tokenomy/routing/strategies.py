"""Strategies: the order in which a model's deployments are tried.

* ``priority`` — the configured order.
* ``cheapest`` — by the price of a reference call (1M input + 1M output tokens) on each
  deployment: catalog price, custom ``[prices]``, or the factory cost of a local box.
  Unpriced deployments go last.
* ``fastest`` — by the expected time of a reference reply, from the gateway's moving
  averages of time to first token and tokens per second; unmeasured deployments first.
* ``weighted`` — a random order drawn by ``weight`` (a weight of 0: only as a fallback).
* ``least-busy`` — fewest calls in flight first.

Ties keep the configured order (sorts are stable).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from tokenomy.config import Deployment
from tokenomy.routing.stats import Stats

StatsOf = Callable[[Deployment], Stats]
CostOf = Callable[[Deployment], int | None]


def cheapest(deps: Sequence[Deployment], cost: CostOf) -> list[Deployment]:
    def key(d: Deployment) -> tuple[bool, int]:
        c = cost(d)
        return (c is None, c or 0)

    return sorted(deps, key=key)


def fastest(deps: Sequence[Deployment], stats: StatsOf) -> list[Deployment]:
    return sorted(deps, key=lambda d: stats(d).expected_s())


def least_busy(deps: Sequence[Deployment], stats: StatsOf) -> list[Deployment]:
    return sorted(deps, key=lambda d: stats(d).in_flight)


def weighted(deps: Sequence[Deployment], rng: random.Random | None = None) -> list[Deployment]:
    """A weighted shuffle: each place drawn among the rest in proportion to weight."""
    r = rng or random
    rest = [d for d in deps if d.weight > 0]
    out: list[Deployment] = []
    while rest:
        total = sum(d.weight for d in rest)
        x = r.uniform(0, total)
        for i, d in enumerate(rest):
            x -= d.weight
            if x <= 0 or i == len(rest) - 1:
                out.append(rest.pop(i))
                break
    out.extend(d for d in deps if d.weight <= 0)
    return out
