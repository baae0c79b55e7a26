"""The budget office of one gateway process: admission, reservation, settlement.

Per request: ``admit`` reserves the worst case on every budget and rate limit that applies
(all or nothing, no ``await`` between the check and the reservation, so concurrent requests
in this process cannot both pass on the same headroom). Capacity comes from leases granted
by the shared database (``storage.grant_lease``); a process only ever reserves from what it
holds, so replicas cannot overspend together. ``settle`` books the actual amount and frees
the rest exactly once. A background task flushes settled spend, returns unused leases when
a budget is tight or idle, keeps leases alive, refreshes definitions and fires alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tokenomy.budgets import storage
from tokenomy.budgets.alerts import AlertSink
from tokenomy.budgets.model import RATE_LIMIT, Budget, show_amount
from tokenomy.budgets.periods import iso_utc, period_bounds
from tokenomy.errors import BudgetExceeded, RateLimited
from tokenomy.ledger.store import Store

log = logging.getLogger("tokenomy.budgets")

# Lease policy: far from the limit (spare >= TIGHT_FACTOR x need) take 1/LEASE_DIVISOR of
# the spare headroom; near it, lease exactly the need.
TIGHT_FACTOR = 64
LEASE_DIVISOR = 16
FLUSH_INTERVAL_S = 0.25
IDLE_RETURN_S = 1.0
REFRESH_INTERVAL_S = 1.0


@dataclass(slots=True)
class Tracker:
    """This process's share of one budget in one period."""

    budget: Budget
    period_start: int
    period_end: int
    balance: int = 0  # leased and not reserved (may dip below 0 if actual > reserved)
    reserved: int = 0  # in-flight reservations
    pending: int = 0  # settled spend not yet flushed
    tight: bool = False
    last_used: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    spent_seen: int = 0  # last ``spent`` read from the database
    limit_seen: int = 0
    leased_seen: int = 0  # capacity held by gateways (in-flight reservations) at that read


@dataclass(slots=True)
class Reservation:
    """What one request holds; ``settle`` it exactly once."""

    holds: list[tuple[Tracker, int]]
    settled: bool = False

    @property
    def empty(self) -> bool:
        return not self.holds


@dataclass(slots=True)  # not frozen: built on every request, and frozen init is slower
class Demand:
    """The worst case of one request in each unit (None: no known price)."""

    usd_nanos: int | None
    tokens: int
    requests: int = 1


class BudgetEngine:
    def __init__(
        self,
        store: Store,
        *,
        tz: str = "UTC",
        alerts: AlertSink | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.tz = tz
        self.alerts = alerts
        self.holder = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._budgets: dict[str, list[Budget]] = {}  # scope → budgets and limits on it
        self._trackers: dict[tuple[str, int], Tracker] = {}
        self._current: dict[str, Tracker] = {}  # budget id → tracker of the current period
        self._by_caller: dict[tuple[str, ...], list[Budget]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self.active = False  # any budget at all? (skip all work when not)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="tokenomy-budgets")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(return_all=True)

    async def refresh(self) -> None:
        budgets = await asyncio.to_thread(storage.list_budgets, self.store)
        by_scope: dict[str, list[Budget]] = {}
        for b in budgets:
            by_scope.setdefault(b.scope, []).append(b)
        self._budgets = by_scope
        self._by_caller = {}
        self.active = bool(budgets)
        live = {b.id: b for b in budgets}
        self._current = {bid: t for bid, t in self._current.items() if bid in live}
        for key, t in list(self._trackers.items()):
            fresh = live.get(t.budget.id)
            if fresh is None:
                if t.reserved == 0:
                    del self._trackers[key]
            elif fresh != t.budget:
                if fresh.period != t.budget.period:  # new calendar: a fresh tracker next time
                    self._current.pop(fresh.id, None)
                t.budget = fresh
        self._last_refresh = time.monotonic()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
                if time.monotonic() - self._last_refresh >= REFRESH_INTERVAL_S:
                    await self.refresh()
            except Exception as exc:  # keep enforcing with what we hold
                log.error("budget flush/refresh failed: %s", exc)

    # -- admission -----------------------------------------------------------------------
    def applicable(self, scopes: list[str]) -> list[Budget]:
        out: list[Budget] = []
        for scope in scopes:
            found = self._budgets.get(scope)
            if found:
                out.extend(found)
        return out

    def budgets_for(self, org: str, team: str, user: str, key: str, agent: str) -> list[Budget]:
        """Budgets and rate limits on a caller's scopes, memoised until the next refresh."""
        ident = (org, team, user, key, agent)
        found = self._by_caller.get(ident)
        if found is None:
            scopes = [f"org:{org}", f"team:{team}", f"user:{user}", f"key:{key}"]
            if agent:
                scopes.append(f"agent:{agent}")
            found = self._by_caller[ident] = self.applicable(scopes)
        return found

    def _tracker(self, b: Budget, now_ms: int) -> Tracker:
        """The tracker of the period containing ``now_ms``, made current for ``_needs``."""
        start, end = period_bounds(b.period, now_ms, self.tz)
        key = (b.id, start)
        t = self._trackers.get(key)
        if t is None:
            t = self._trackers[key] = Tracker(b, start, end, limit_seen=b.limit)
        self._current[b.id] = t
        return t

    def _needs(self, budgets: list[Budget], demand: Demand) -> list[tuple[Tracker, int]]:
        now = self._clock()
        current = self._current
        amounts = {"usd": demand.usd_nanos, "tokens": demand.tokens, "requests": demand.requests}
        needs: list[tuple[Tracker, int]] = []
        for b in budgets:
            # The current period's tracker is remembered per budget, so calendar
            # arithmetic runs only when a period ends, not on every request.
            t = current.get(b.id)
            if t is None or not t.period_start <= now < t.period_end:
                t = self._tracker(b, now)
            if not b.hard:
                needs.append((t, 0))  # soft: track spend only, never refuse
                continue
            need = amounts[b.unit]
            if need is None:
                raise BudgetExceeded(
                    f"The {b.label} is counted in USD, but this model has no known price, so "
                    "the request cannot be admitted. Configure a [prices.ID] for it."
                )
            needs.append((t, need))
        return needs

    @staticmethod
    def _take(needs: list[tuple[Tracker, int]]) -> Reservation | None:
        """Reserve on all, or on none if any lease is short (no await: all or nothing)."""
        for t, n in needs:
            if n > t.balance:
                return None
        for t, n in needs:  # last_used is set at settle: a tracker holding a reservation
            t.balance -= n  # is never idle
            t.reserved += n
        return Reservation(needs)

    def try_admit(self, budgets: list[Budget], demand: Demand) -> Reservation | None:
        """The hot path: reserve from leases already held; None if a lease must be fetched."""
        return self._take(self._needs(budgets, demand))

    async def admit(self, budgets: list[Budget], demand: Demand) -> Reservation:
        """Reserve ``demand`` on every given hard budget and rate limit, or refuse."""
        needs = self._needs(budgets, demand)
        for _attempt in range(4):
            taken = self._take(needs)
            if taken is not None:
                return taken
            for t, n in needs:
                if n > t.balance and not await self._lease(t, n):
                    raise self._refusal(t, n)
        t, n = next(((t, n) for t, n in needs if n > t.balance), needs[0])
        raise self._refusal(t, n)

    async def _lease(self, t: Tracker, need: int) -> bool:
        async with t.lock:  # one grant at a time per budget; others wait and re-check
            if t.balance >= need:
                return True
            grant = await asyncio.to_thread(
                storage.grant_lease,
                self.store,
                t.budget.id,
                t.period_start,
                self.holder,
                need - t.balance,
                tight_factor=TIGHT_FACTOR,
                lease_divisor=LEASE_DIVISOR,
                granule=need,
            )
            if grant is None:
                return False
            t.spent_seen, t.limit_seen, t.leased_seen = grant.spent, grant.limit, grant.leased
            if grant.granted == 0:
                t.tight = True
                return False
            t.balance += grant.granted
            t.tight = grant.available < TIGHT_FACTOR * need
            return True

    def _refusal(self, t: Tracker, need: int) -> BudgetExceeded | RateLimited:
        b = t.budget
        reset = iso_utc(t.period_end) or "never (total budget)"
        if b.kind == RATE_LIMIT:
            retry = max(1, math.ceil((t.period_end - self._clock()) / 1000))
            return RateLimited(
                f"Rate limit reached for {b.scope}: {show_amount(b.unit, b.limit)} per minute. "
                f"Retry after {retry} s.",
                headers={"retry-after": str(retry)},
            )
        return BudgetExceeded(
            f"Budget exceeded for {b.scope}: limit {show_amount(b.unit, t.limit_seen)} per "
            f"{b.period}, spent {show_amount(b.unit, t.spent_seen)}, reserved "
            f"{show_amount(b.unit, t.leased_seen)}, this request needs up to "
            f"{show_amount(b.unit, need)}; resets {reset}."
        )

    # -- settlement ----------------------------------------------------------------------
    def settle(
        self, res: Reservation, usd_nanos: int | None, tokens: int, requests: int = 1
    ) -> None:
        """Book the actual amounts and release the rest of the reservation (exactly once)."""
        if res.settled:
            return
        res.settled = True
        used = time.monotonic()
        for t, held in res.holds:
            unit = t.budget.unit
            if unit == "usd":
                actual = usd_nanos if usd_nanos is not None else held
            else:
                actual = tokens if unit == "tokens" else requests
            t.reserved -= held
            if t.budget.hard:
                t.balance += held - actual
            t.pending += actual
            t.last_used = used

    # -- background ----------------------------------------------------------------------
    async def flush(self, return_all: bool = False) -> None:
        """Book pending spend; hand back leases that are tight, idle or from old periods."""
        now_ms = self._clock()
        idle_before = time.monotonic() - IDLE_RETURN_S
        items: list[storage.Settlement] = []
        touched: list[Tracker] = []
        for key, t in list(self._trackers.items()):
            expired = t.period_end <= now_ms
            give_back = 0
            if (
                t.budget.hard
                and t.balance > 0
                and (
                    return_all
                    or t.tight
                    or expired
                    or (t.reserved == 0 and t.last_used < idle_before)
                )
            ):
                give_back = t.balance
            if t.pending or give_back:
                items.append(storage.Settlement(t.budget.id, t.period_start, t.pending, give_back))
                touched.append(t)
                t.pending = 0
                t.balance -= give_back
            if expired and t.reserved == 0 and t.balance <= 0 and t.pending == 0:
                del self._trackers[key]
        if not items and not self._trackers:
            return
        try:
            spent = await asyncio.to_thread(storage.flush, self.store, self.holder, items)
        except Exception:
            for t, s in zip(touched, items, strict=True):  # keep them for the next try
                t.pending += s.spent_delta
                t.balance += s.returned
            raise
        for t in touched:
            t.spent_seen = spent.get((t.budget.id, t.period_start), t.spent_seen)
            if self.alerts is not None and t.budget.alerts:
                await self._check_alerts(t)

    async def _check_alerts(self, t: Tracker) -> None:
        b = t.budget
        if b.limit <= 0:
            return
        ratio = Decimal(t.spent_seen) / Decimal(b.limit)
        for threshold in b.alerts:
            if ratio >= threshold:
                first = await asyncio.to_thread(
                    storage.record_alert, self.store, b.id, t.period_start, threshold, t.spent_seen
                )
                if first and self.alerts is not None:
                    await self.alerts.fire(b, threshold, t.spent_seen, t.period_start, t.period_end)

    # -- introspection -------------------------------------------------------------------
    def local_reserved(self) -> int:
        return sum(t.reserved for t in self._trackers.values())
