"""The router: which deployments may serve a request, in which order, and what comes next.

``Router`` lives as long as the gateway and keeps what routing learns: a circuit breaker and
moving averages per deployment, and the sticky map. Per request it builds a
:class:`Plan` — the ordered candidates (strategy, stickiness, the endpoint's bridges and the
data policy's verdict applied) — and the plan answers "which deployment next, after how
long?" after each failed attempt.

Hot path: a model with one deployment and strategy ``priority`` returns its configured
tuple as it is; the only per-request allocation is the ``Plan``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from tokenomy.config import Deployment, Model, Settings
from tokenomy.errors import RequestError
from tokenomy.pricing import PriceBook
from tokenomy.routing import retry, strategies
from tokenomy.routing.aliases import Resolver, upstream_id
from tokenomy.routing.breaker import Breaker
from tokenomy.routing.stats import Stats
from tokenomy.routing.sticky import Sticky
from tokenomy.wire import ENDPOINTS, Endpoint
from tokenomy.wire import bridge as bridge_for

# ``cheapest`` ranks on the price of this call; prices are re-read this often (dated prices).
_REFERENCE_TOKENS = 1_000_000
_COST_TTL_S = 3600.0
_MAX_CONCRETE = 4096

Allowed = Callable[[Deployment], bool]


class Router:
    def __init__(self, settings: Settings, prices: PriceBook) -> None:
        self.settings = settings
        self.prices = prices
        self.resolver = Resolver(settings)
        self.sticky = Sticky(settings.routing.sticky_max_entries)
        self._breakers: dict[str, Breaker] = {}
        self._stats: dict[str, Stats] = {}
        default = settings.routing.breaker
        for model in settings.models.values():
            for dep in model.deployments:
                # One physical deployment (same name) shares its health across models.
                if dep.name not in self._breakers:
                    self._breakers[dep.name] = Breaker(model.breaker or default)
                    self._stats[dep.name] = Stats()
        # The deployments whose stats someone reads (``fastest`` and ``least-busy`` among
        # several): only their calls are counted in flight and timed.
        self.measured: frozenset[str] = frozenset(
            dep.name
            for model in settings.models.values()
            if len(model.deployments) > 1 and model.strategy in ("fastest", "least-busy")
            for dep in model.deployments
        )
        self._costs: dict[tuple[str, str], tuple[float, int | None]] = {}
        self._concrete: dict[tuple[str, str], Deployment] = {}
        # The hot path: per endpoint, each one-deployment model's candidates, computed once.
        self._single: dict[str, dict[str, Sequence[Deployment]]] = {
            e: {
                name: m.deployments if bridge_for(ep, m.deployments[0].provider.kind) else ()
                for name, m in settings.models.items()
                if len(m.deployments) == 1 and not m.pattern
            }
            for e, ep in ENDPOINTS.items()
        }

    # -- per deployment ------------------------------------------------------------------
    def breaker(self, dep: Deployment) -> Breaker:
        return self._breakers[dep.name]

    def stats(self, dep: Deployment) -> Stats:
        return self._stats[dep.name]

    def breaker_states(self) -> dict[str, str]:
        """Each deployment's circuit breaker state (``breaker.CLOSED``, ``OPEN``, ``HALF_OPEN``)."""
        return {name: b.state for name, b in list(self._breakers.items())}

    def cost(self, dep: Deployment) -> int | None:
        """Price of the reference call on ``dep`` (nano-USD), refreshed hourly."""
        key = (dep.name, dep.model)
        now = time.monotonic()
        hit = self._costs.get(key)
        if hit is not None and now - hit[0] < _COST_TTL_S:
            return hit[1]
        ts_ms = int(time.time() * 1000)
        cost = self.prices.max_cost_nanos(dep, _REFERENCE_TOKENS, _REFERENCE_TOKENS, ts_ms)
        self._costs[key] = (now, cost)
        return cost

    # -- planning ------------------------------------------------------------------------
    def resolve(self, requested: str) -> tuple[Model, str] | None:
        return self.resolver.resolve(requested)

    def candidates(
        self,
        model: Model,
        requested: str,
        matched: str,
        endpoint: Endpoint,
        *,
        task: str = "",
        previous_response_id: str = "",
        allowed: Allowed | None = None,
    ) -> Sequence[Deployment]:
        """The deployments that may serve this request, best first (may be empty)."""
        if allowed is None:
            single = self._single[endpoint.name].get(model.name)
            if single is not None:
                return single
        deps: Sequence[Deployment] = model.deployments
        if model.pattern:
            deps = [self._concretize(d, requested, matched) for d in deps]
        if len(deps) == 1:
            d = deps[0]
            ok = bridge_for(endpoint, d.provider.kind) is not None
            return deps if ok and (allowed is None or allowed(d)) else ()
        strategy = model.strategy
        if strategy == "cheapest":
            deps = strategies.cheapest(deps, self.cost)
        elif strategy == "fastest":
            deps = strategies.fastest(deps, self.stats)
        elif strategy == "weighted":
            deps = strategies.weighted(deps)
        elif strategy == "least-busy":
            deps = strategies.least_busy(deps, self.stats)
        out = [
            d
            for d in deps
            if bridge_for(endpoint, d.provider.kind) is not None and (allowed is None or allowed(d))
        ]
        sticky = ""
        if previous_response_id:
            sticky = self.sticky.get(("response", previous_response_id)) or ""
        if not sticky and task:
            sticky = self.sticky.get(("task:" + model.name, task)) or ""
        if sticky:
            now = time.monotonic()
            for i, d in enumerate(out):
                if d.name == sticky:
                    if i and self.breaker(d).available(now):
                        out.insert(0, out.pop(i))
                    break
        return out

    def _concretize(self, dep: Deployment, requested: str, matched: str) -> Deployment:
        model = upstream_id(dep.model, requested, matched)
        key = (dep.name, model)
        found = self._concrete.get(key)
        if found is None:
            if len(self._concrete) >= _MAX_CONCRETE:
                self._concrete.clear()
            found = self._concrete[key] = dataclasses.replace(dep, model=model)
        return found

    def remember(self, model: Model, dep: Deployment, task: str, response_id: str) -> None:
        """After a served call: stick the task (first call wins) and the response id."""
        if len(model.deployments) < 2:
            return
        if task:
            key = ("task:" + model.name, task)
            if self.sticky.get(key) is None:
                self.sticky.put(key, dep.name)
        if response_id:
            self.sticky.put(("response", response_id), dep.name)


class Plan:
    """One request's attempts: the candidates and what has failed so far."""

    __slots__ = ("_failed", "_wait_until", "deps", "limit", "made", "model", "pos", "router")

    def __init__(self, router: Router, model: Model, deps: Sequence[Deployment]) -> None:
        self.router = router
        self.model = model
        self.deps = deps
        self.limit = model.max_attempts
        self.made = 0
        self.pos = -1
        self._failed: dict[str, int] | None = None
        self._wait_until: dict[str, float] | None = None

    def replace(self, model: Model, deps: Sequence[Deployment]) -> None:
        """Another model serves from now on (context-window fallback, downgrade)."""
        self.model, self.deps, self.pos = model, deps, -1
        self.limit = self.made + model.max_attempts

    def first(self, now: float) -> Deployment | None:
        """The first deployment whose breaker lets a call through (takes a probe).

        A lone deployment is always tried: with nowhere else to go, failing fast would
        only turn the upstream's trouble into the gateway's.
        """
        if len(self.deps) == 1:
            self.pos = 0
            return self.deps[0]
        for i, d in enumerate(self.deps):
            if self.router.breaker(d).acquire(now):
                self.pos = i
                return d
        return None

    def failed(self, dep: Deployment, err: RequestError, now: float) -> None:
        """Note a failed attempt on ``dep`` (its breaker and the request's backoff)."""
        if self._failed is None:
            self._failed, self._wait_until = {}, {}
        assert self._wait_until is not None
        self._failed[dep.name] = self._failed.get(dep.name, 0) + 1
        after = retry.retry_after_s(err)
        if after:
            self._wait_until[dep.name] = now + after

    def next(self, now: float) -> tuple[Deployment, float] | None:
        """The next deployment to try and the wait before it; None when done."""
        if self.made >= self.limit or not self.deps:
            return None
        n = len(self.deps)
        policy = self.model.retry
        failed = self._failed or {}
        waits = self._wait_until or {}
        for step in range(1, n + 1):
            i = (self.pos + step) % n
            d = self.deps[i]
            times = failed.get(d.name, 0)
            delay = retry.backoff_s(policy, times) if times else 0.0
            delay = max(delay, waits.get(d.name, now) - now)
            if delay > retry.MAX_RETRY_AFTER_S:
                continue
            # Open, or pausing at an upstream's request, when this attempt would go: skip.
            if n > 1 and not self.router.breaker(d).acquire(now + delay):
                continue
            self.pos = i
            return d, delay
        return None
