"""The budget office of one gateway process: admission, reservation, settlement.

Per request: ``admit`` reserves the worst case on every budget and rate limit that applies
(all or nothing, no ``await`` between the check and the reservation, so concurrent requests
in this process cannot both pass on the same headroom). Capacity comes from leases granted
by the shared database (``storage.grant_lease``); a process only ever reserves from what it
holds, so replicas cannot overspend together. ``settle`` books the actual amount and frees
the rest exactly once. A background task flushes settled spend, returns unused leases when
a budget is tight or idle, keeps leases alive, refreshes definitions and fires alerts.

Fencing (see ``storage``): a lease is spent from only while this process's own monotonic
clock says its last renewal (the start of the grant or flush transaction that renewed it)
is younger than the lease TTL minus a safety margin, so it stops before any other replica
may consider the lease stale. Past that, the slow path renews it through the database, or
answers 503 (``BudgetUnavailable``) when the database cannot be reached. A lease found
stale is fenced: its tracker is replaced by a fresh one (a new epoch), and the old one
only settles its calls in flight and hands the rest back.

If the database is down at start-up, or goes down, the engine keeps running, reports it in
``health()`` and retries with backoff; definitions unknown yet → 503 for every call that has
to be checked against budgets.
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
from typing import Any

from tokenomy.budgets import storage
from tokenomy.budgets.alerts import AlertSink
from tokenomy.budgets.model import RATE_LIMIT, Budget, show_amount
from tokenomy.budgets.periods import iso_utc, period_bounds
from tokenomy.clock import now_ms
from tokenomy.errors import BudgetExceeded, BudgetUnavailable, RateLimited
from tokenomy.ledger.store import Store

log = logging.getLogger("tokenomy.budgets")

# Lease policy: far from the limit (spare >= TIGHT_FACTOR x need) take 1/LEASE_DIVISOR of
# the spare headroom; near it, lease exactly the need.
TIGHT_FACTOR = 64
LEASE_DIVISOR = 16
FLUSH_INTERVAL_S = 0.25
IDLE_RETURN_S = 1.0
REFRESH_INTERVAL_S = 1.0
# A lease is spent from until renewal start + TTL - TTL / LEASE_MARGIN_DIVISOR.
LEASE_MARGIN_DIVISOR = 5
# Database down: retry after 0.25 s, doubling up to this; one log line per LOG_EVERY_S.
MAX_BACKOFF_S = 2.0
LOG_EVERY_S = 10.0


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
    epoch: int = 0  # the lease in the database this balance comes from (0: none)
    valid_until: float = 0.0  # monotonic: admit from the lease only before this
    fenced: bool = False  # the lease went stale: settle what is in flight, never admit


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
        lease_ttl_ms: int = storage.LEASE_TTL_MS,
        lease_grace_ms: int = storage.LEASE_GRACE_MS,
        ledger_replayed: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.tz = tz
        self.alerts = alerts
        self.holder = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self._clock = clock or now_ms
        self._budgets: dict[str, list[Budget]] = {}  # scope → budgets and limits on it
        self._trackers: dict[tuple[str, int], Tracker] = {}
        self._current: dict[str, Tracker] = {}  # budget id → tracker of the current period
        self._by_caller: dict[tuple[str, ...], list[Budget]] = {}
        self._draining: list[Tracker] = []  # fenced: settling their calls in flight
        self._task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self.ttl_ms, self.grace_ms = lease_ttl_ms, lease_grace_ms
        self._valid_s = (lease_ttl_ms - lease_ttl_ms / LEASE_MARGIN_DIVISOR) / 1000
        # Until the definitions are loaded once, every call goes through ``budgets_for``,
        # which refuses with 503: a budget must not be bypassed because it is unknown yet.
        self.loaded = False
        # Events the ledger writer replayed from the journal so far: when the database was
        # down at start-up it replays later, and spend is then rebuilt once more.
        self._ledger_replayed = ledger_replayed or (lambda: 0)
        self._rebuilt_for = 0
        self.active = True  # any budget at all? (skip all work when not)
        self._db_error: str | None = None
        self._down_until = 0.0  # monotonic: until then, fail fast instead of asking again
        self._backoff = 0.0
        self._last_log = -LOG_EVERY_S
        self._refused = 0  # calls answered 503 since the last log line

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Load definitions (rebuilding spend from the ledger); never fails on the database."""
        try:
            await self.refresh()
        except Exception as exc:  # start anyway: not ready, retried in the background
            self._db_failed(exc)
        self._task = asyncio.create_task(self._loop(), name="tokenomy-budgets")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush(return_all=True)
        except Exception as exc:  # the leases go stale and are reclaimed after their grace
            log.error("budget leases not handed back at shutdown: %s", exc)

    async def refresh(self) -> None:
        budgets = await asyncio.to_thread(storage.list_budgets, self.store)
        replayed = self._ledger_replayed()
        if not self.loaded or replayed != self._rebuilt_for:
            # Spend settled by a previous run but never flushed is in the ledger.
            raised = await asyncio.to_thread(
                storage.rebuild_from_ledger, self.store, budgets, self.tz, self._clock()
            )
            if raised:
                log.warning("budget spend rebuilt from the ledger for %d budgets", len(raised))
            self.loaded, self._rebuilt_for = True, replayed
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
            await asyncio.sleep(self._backoff if self._db_error else FLUSH_INTERVAL_S)
            try:
                if not self.loaded:
                    await self.refresh()
                await self.flush()
                if time.monotonic() - self._last_refresh >= REFRESH_INTERVAL_S:
                    await self.refresh()
                self._db_ok()
            except Exception as exc:  # keep enforcing with what we hold
                self._db_failed(exc)

    # -- database health -------------------------------------------------------------------
    def _db_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._backoff = min(max(self._backoff * 2, FLUSH_INTERVAL_S), MAX_BACKOFF_S)
        self._down_until = now + self._backoff
        first = self._db_error is None
        self._db_error = type(exc).__name__
        if first or now - self._last_log >= LOG_EVERY_S:  # one line, not one per request
            self._last_log = now
            log.error(
                "budget database unavailable (%s: %s); calls needing a new lease get 503 "
                "(%d since the last report); retrying",
                self._db_error,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                self._refused,
            )
            self._refused = 0

    def _db_ok(self) -> None:
        if self._db_error is not None:
            log.warning("budget database reachable again (%d calls got 503)", self._refused)
            self._db_error, self._backoff, self._down_until, self._refused = None, 0.0, 0.0, 0

    def _unavailable(self) -> BudgetUnavailable:
        self._refused += 1
        wait = max(1, math.ceil(self._down_until - time.monotonic()))
        what = "budget state" if self.loaded else "budget definitions"
        return BudgetUnavailable(
            f"The gateway cannot reach its database for {what}, so this call cannot be "
            f"checked against its budgets. Retry after {wait} s.",
            retry_after_s=wait,
        )

    def health(self) -> dict[str, Any]:
        """``ok`` when definitions are loaded and the database answered the last time."""
        return {
            "ok": self.loaded and self._db_error is None,
            "definitions_loaded": self.loaded,
            "definitions": sum(len(found) for found in self._budgets.values()),
            "database": "unavailable" if self._db_error else "ok",
            "error": self._db_error,
            "fenced_leases_draining": len(self._draining),
        }

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
            if not self.loaded:
                raise self._unavailable()
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
    def _take(needs: list[tuple[Tracker, int]], now: float) -> Reservation | None:
        """Reserve on all, or on none if any lease is short or due for renewal (no await)."""
        for t, n in needs:
            if n > t.balance or (n and now >= t.valid_until):
                return None
        for t, n in needs:  # last_used is set at settle: a tracker holding a reservation
            t.balance -= n  # is never idle
            t.reserved += n
        return Reservation(needs)

    def try_admit(self, budgets: list[Budget], demand: Demand) -> Reservation | None:
        """The hot path: reserve from leases already held; None if a lease must be fetched."""
        return self._take(self._needs(budgets, demand), time.monotonic())

    async def admit(self, budgets: list[Budget], demand: Demand) -> Reservation:
        """Reserve ``demand`` on every given hard budget and rate limit, or refuse."""
        for _attempt in range(4):
            needs = self._needs(budgets, demand)  # again: a fenced tracker is replaced
            now = time.monotonic()
            taken = self._take(needs, now)
            if taken is not None:
                return taken
            for t, n in needs:
                if n and (n > t.balance or now >= t.valid_until) and not await self._lease(t, n):
                    raise self._refusal(t, n)
        needs = self._needs(budgets, demand)
        t, n = next(((t, n) for t, n in needs if n > t.balance), needs[0])
        raise self._refusal(t, n)

    async def _lease(self, t: Tracker, need: int) -> bool:
        """Grow or renew ``t``'s lease; False if the budget cannot give ``need``."""
        async with t.lock:  # one grant at a time per budget; others wait and re-check
            started = time.monotonic()
            if t.fenced or (t.balance >= need and started < t.valid_until):
                return True  # done meanwhile (or replaced): the caller looks again
            if started < self._down_until:
                raise self._unavailable()
            epoch = t.epoch
            try:
                grant = await asyncio.to_thread(
                    storage.grant_lease,
                    self.store,
                    t.budget.id,
                    t.period_start,
                    self.holder,
                    max(need - t.balance, 0),
                    epoch=epoch,
                    tight_factor=TIGHT_FACTOR,
                    lease_divisor=LEASE_DIVISOR,
                    granule=need,
                    ttl_ms=self.ttl_ms,
                    grace_ms=self.grace_ms,
                )
            except Exception as exc:
                self._db_failed(exc)
                raise self._unavailable() from exc
            self._db_ok()
            if grant is None:
                return False
            t.spent_seen, t.limit_seen, t.leased_seen = grant.spent, grant.limit, grant.leased
            if grant.fenced:
                if t.epoch == epoch:  # else a flush found it handed back meanwhile
                    self._fence(t)
                return True
            if grant.epoch:
                t.epoch = grant.epoch
                t.valid_until = max(t.valid_until, started + self._valid_s)
            t.balance += grant.granted
            if t.balance < need:
                t.tight = True
                return False
            t.tight = grant.available < TIGHT_FACTOR * need
            return True

    def _fence(self, t: Tracker) -> None:
        """``t``'s lease went stale: a fresh tracker takes its place, ``t`` only settles."""
        if t.fenced:
            return
        t.fenced, t.valid_until = True, 0.0
        key = (t.budget.id, t.period_start)
        fresh = Tracker(
            t.budget,
            t.period_start,
            t.period_end,
            spent_seen=t.spent_seen,
            limit_seen=t.limit_seen,
            leased_seen=t.leased_seen,
        )
        if self._trackers.get(key) is t:
            self._trackers[key] = fresh
        if self._current.get(t.budget.id) is t:
            self._current[t.budget.id] = fresh
        self._draining.append(t)
        log.warning(
            "budget lease on %s (epoch %d) went stale; settling it out and leasing anew",
            t.budget.scope,
            t.epoch,
        )

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
        """Book pending spend; hand back leases that are tight, idle or from old periods.

        Also the heartbeat: leases found live are valid for another TTL (minus the margin)
        from the start of this flush; leases found stale are fenced.
        """
        now_ms = self._clock()
        started = time.monotonic()
        idle_before = started - IDLE_RETURN_S
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
                items.append(
                    storage.Settlement(t.budget.id, t.period_start, t.epoch, t.pending, give_back)
                )
                touched.append(t)
                t.pending = 0
                t.balance -= give_back
            if expired and t.reserved == 0 and t.balance <= 0 and t.pending == 0:
                del self._trackers[key]
        drained: list[Tracker] = []
        for t in self._draining:
            give_back = max(t.balance, 0)
            drain = t.reserved == 0  # nothing in flight: no settle can come any more
            if t.pending or give_back or (drain and t.epoch):
                items.append(
                    storage.Settlement(
                        t.budget.id, t.period_start, t.epoch, t.pending, give_back, drain
                    )
                )
                touched.append(t)
                t.pending = 0
                t.balance -= give_back
            if drain:
                drained.append(t)
        epochs = [(t, t.epoch) for t in self._trackers.values() if t.epoch]
        if not items and not epochs and not drained:
            return
        try:
            done = await asyncio.to_thread(
                storage.flush, self.store, self.holder, items, ttl_ms=self.ttl_ms
            )
        except Exception:
            for t, s in zip(touched, items, strict=True):  # keep them for the next try
                t.pending += s.spent_delta
                t.balance += s.returned
            raise
        if drained:
            gone = {id(t) for t in drained}
            self._draining = [t for t in self._draining if id(t) not in gone]
        if done.unleased:
            log.warning(
                "booked %d of settled spend beyond the lease it was reserved from (a call "
                "cost more than its reservation, or a stall outlasted the lease grace period)",
                done.unleased,
            )
        renewed = started + self._valid_s
        for t, epoch in epochs:
            if t.fenced or t.epoch != epoch:  # changed while the flush ran: not this one
                continue
            if (t.budget.id, t.period_start, epoch) in done.live:
                t.valid_until = max(t.valid_until, renewed)
            elif t.balance <= 0 and t.reserved == 0 and t.pending == 0:
                t.epoch, t.valid_until = 0, 0.0  # handed back in full: nothing to fence
            else:
                self._fence(t)
        for t in touched:
            t.spent_seen = done.spent.get((t.budget.id, t.period_start), t.spent_seen)
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
    def spent_share(self, budgets: list[Budget]) -> float:
        """The largest share of its limit any USD or token budget among ``budgets`` has used
        this period, as far as this process knows (spent when last read, plus settled spend
        not yet flushed, plus reservations in flight); 0 for one not used yet. Routing's
        budget-aware downgrade compares it with a model's ``downgrade.at_share``."""
        share = 0.0
        for b in budgets:
            if b.kind == RATE_LIMIT or b.unit not in ("usd", "tokens"):
                continue
            t = self._current.get(b.id)
            limit = t.limit_seen if t is not None and t.limit_seen > 0 else b.limit
            if t is None or limit <= 0:
                continue
            share = max(share, (t.spent_seen + t.pending + t.reserved) / limit)
        return share

    def local_reserved(self) -> int:
        return sum(t.reserved for t in (*self._trackers.values(), *self._draining))

    def in_flight(self) -> list[tuple[Budget, int]]:
        """What this process's calls in flight hold reserved, per budget period tracked."""
        return [(t.budget, t.reserved) for t in list(self._trackers.values())]
