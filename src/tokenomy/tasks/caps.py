"""Per-task caps: tokens, cost, calls and duration of one task, enforced across replicas.

Configured in ``[tasks]`` (every task), ``[tasks.teams.NAME]`` and ``[tasks.agents.NAME]``;
for each cap the most specific setting wins (agent over team over the global one).

Enforcement reserves before each call, in the shared database, in one transaction per
call (so replicas see each other at once): the call's worst case (tokens, cost) is held
in ``task_cap_holds`` until it settles into ``task_cap_usage``. A call is admitted while

* calls settled + calls in flight + 1 <= max_calls_per_task (exact, never over);
* tokens (cost) settled + worst case of the calls in flight < max_tokens (cost) per task;
* the task's first call is less than max_task_duration_s ago.

Every held worst case is at least what its call will spend, so when the last admitted
call starts, everything before it is bounded below the cap: a task overshoots a token or
cost cap by at most that one call. The call that reaches a cap completes; the next is
refused with 429 ``task_cap_exceeded``.

Why not the budgets' leases: a lease hands a replica a slice of a long-lived limit so
that most calls need no database round trip. A task lives minutes and its calls come one
after another, mostly to one replica; a slice of a 100-call cap is a few calls, and it
would be handed out and back on every step. Here the round trip is paid only by calls
that have a cap; calls without one never touch this module.

All database work runs on one thread per process, in submission order: a call's
settlement is queued before its response is sent, so the same agent's next call, on the
same replica, is checked against it. On another replica the settlement may land a few
milliseconds later: a call refused only because of calls still in flight asks again for
up to ``HOLD_WAIT_S`` before it is refused. Holds of a process that died are ignored once older
than the gateway's request timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy import clock
from tokenomy.config import TaskCapsSection, TasksSection
from tokenomy.errors import ServiceUnavailable, TaskCapExceeded
from tokenomy.ledger.store import Store
from tokenomy.money import decimal_str, nanos_to_usd, usd_to_nanos

log = logging.getLogger("tokenomy.tasks")

# A call refused only because of the task's calls in flight asks again every HOLD_POLL_S
# for up to HOLD_WAIT_S: they may be about to settle (a sequential agent's previous call,
# settled on another replica a moment later).
HOLD_WAIT_S = 2.0
HOLD_POLL_S = 0.02
_FIELDS = ("max_tokens_per_task", "max_cost_per_task", "max_calls_per_task", "max_task_duration_s")


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps that apply to one task (None: no cap)."""

    max_tokens: int | None = None
    max_cost_nanos: int | None = None
    max_calls: int | None = None
    max_duration_ms: int | None = None

    @property
    def any(self) -> bool:
        return not (
            self.max_tokens is None
            and self.max_cost_nanos is None
            and self.max_calls is None
            and self.max_duration_ms is None
        )


NO_CAPS = Caps()


def _merge(layers: list[TaskCapsSection]) -> Caps:
    values: dict[str, Any] = {}
    for layer in layers:  # least specific first: later layers override
        for name in _FIELDS:
            v = getattr(layer, name)
            if v is not None:
                values[name] = v
    cost = values.get("max_cost_per_task")
    duration = values.get("max_task_duration_s")
    return Caps(
        values.get("max_tokens_per_task"),
        usd_to_nanos(Decimal(cost)) if cost is not None else None,
        values.get("max_calls_per_task"),
        round(duration * 1000) if duration is not None else None,
    )


class CapTable:
    """Resolved caps per (team, agent), memoised: the lookup on the hot path is a dict get."""

    def __init__(self, section: TasksSection) -> None:
        self.section = section
        self.active = bool(
            _merge([section]).any
            or any(_merge([s]).any for s in (*section.teams.values(), *section.agents.values()))
        )
        self._memo: dict[tuple[str, str], Caps] = {}

    def caps_for(self, team: str, agent: str) -> Caps:
        found = self._memo.get((team, agent))
        if found is None:
            layers: list[TaskCapsSection] = [self.section]
            if team in self.section.teams:
                layers.append(self.section.teams[team])
            if agent and agent in self.section.agents:
                layers.append(self.section.agents[agent])
            found = _merge(layers)
            if len(self._memo) < 100_000:
                self._memo[(team, agent)] = found
        return found


@dataclass(frozen=True, slots=True)
class Hold:
    """One admitted call's worst case, held until it settles."""

    org: str
    task: str
    request_id: str
    tokens: int
    cost_nanos: int


def _usd(nanos: int) -> str:
    return "$" + decimal_str(nanos_to_usd(nanos))


def reserve(
    store: Store,
    org: str,
    task: str,
    request_id: str,
    caps: Caps,
    worst_tokens: int,
    worst_cost_nanos: int,
    *,
    stale_ms: int,
    now_ms: int | None = None,
) -> Hold:
    """Admit one call of a task against its caps and hold its worst case; or raise.

    Raises:
        TaskCapExceeded: the message names the cap, its limit and what the task used.
    """
    now = now_ms if now_ms is not None else clock.now_ms()
    lock = " FOR UPDATE" if store.dialect == "postgresql" else ""
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "INSERT INTO task_cap_usage (org, task, first_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (org, task) DO NOTHING"
            ),
            (org, task, now),
        )
        cur.execute(
            store.sql(
                "SELECT first_ms, calls, tokens, cost_nanos FROM task_cap_usage "
                "WHERE org = ? AND task = ?" + lock
            ),
            (org, task),
        )
        first_ms, calls, tokens, cost = (int(v) for v in cur.fetchone())
        cur.execute(
            store.sql(
                "SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(cost_nanos), 0) "
                "FROM task_cap_holds WHERE org = ? AND task = ? AND ts_ms >= ?"
            ),
            (org, task, now - stale_ms),
        )
        held_calls, held_tokens, held_cost = (int(v) for v in cur.fetchone())
        refusal = _check(
            caps, now - first_ms, calls + held_calls, tokens + held_tokens, cost + held_cost
        )
        if refusal is not None:
            message = f"Task {task!r} reached its {refusal}."
            if held_calls and _check(caps, now - first_ms, calls, tokens, cost) is None:
                raise InFlight(message)  # only because of calls still settling
            raise TaskCapExceeded(message)
        cur.execute(
            store.sql(
                "INSERT INTO task_cap_holds (org, task, request_id, tokens, cost_nanos, ts_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (org, task, request_id, worst_tokens, worst_cost_nanos, now),
        )
    return Hold(org, task, request_id, worst_tokens, worst_cost_nanos)


class InFlight(TaskCapExceeded):
    """Refused only because of calls in flight: worth asking again once they settle."""


def _check(caps: Caps, age_ms: int, calls: int, tokens: int, cost: int) -> str | None:
    """Which cap refuses the next call (a phrase for the message), or None."""
    if caps.max_calls is not None and calls + 1 > caps.max_calls:
        return f"max_calls_per_task cap: {caps.max_calls:,} calls (made {calls:,})"
    if caps.max_tokens is not None and tokens >= caps.max_tokens:
        return (
            f"max_tokens_per_task cap: {caps.max_tokens:,} tokens "
            f"(used or in flight up to {tokens:,})"
        )
    if caps.max_cost_nanos is not None and cost >= caps.max_cost_nanos:
        return (
            f"max_cost_per_task cap: {_usd(caps.max_cost_nanos)} "
            f"(spent or in flight up to {_usd(cost)})"
        )
    if caps.max_duration_ms is not None and age_ms >= caps.max_duration_ms:
        return (
            f"max_task_duration_s cap: {caps.max_duration_ms / 1000:g} s "
            f"(its first call was {age_ms / 1000:.1f} s ago)"
        )
    return None


def settle(store: Store, hold: Hold, tokens: int, cost_nanos: int | None) -> None:
    """Book a call's actual tokens and cost and drop its hold (cost unknown: its worst case)."""
    cost = cost_nanos if cost_nanos is not None else hold.cost_nanos
    with store.transaction() as cur:
        cur.execute(
            store.sql("DELETE FROM task_cap_holds WHERE org = ? AND task = ? AND request_id = ?"),
            (hold.org, hold.task, hold.request_id),
        )
        cur.execute(
            store.sql(
                "UPDATE task_cap_usage SET calls = calls + 1, tokens = tokens + ?, "
                "cost_nanos = cost_nanos + ? WHERE org = ? AND task = ?"
            ),
            (tokens, cost, hold.org, hold.task),
        )


def release(store: Store, hold: Hold) -> None:
    """Drop a hold whose call never went upstream (nothing is booked)."""
    with store.transaction() as cur:
        cur.execute(
            store.sql("DELETE FROM task_cap_holds WHERE org = ? AND task = ? AND request_id = ?"),
            (hold.org, hold.task, hold.request_id),
        )


class CapOffice:
    """The caps of one gateway process: reserve before a call, settle after it."""

    def __init__(self, store: Store, section: TasksSection, *, stale_ms: int) -> None:
        self.store = store
        self.table = CapTable(section)
        self.stale_ms = stale_ms
        # One thread, FIFO: a call's settlement runs before a later call's reservation.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tokenomy-caps")
        self._pending: set[concurrent.futures.Future[None]] = set()

    @property
    def active(self) -> bool:
        return self.table.active

    async def reserve(
        self,
        org: str,
        team: str,
        agent: str,
        task: str,
        request_id: str,
        worst_tokens: int,
        worst_cost_nanos: int,
    ) -> Hold | None:
        caps = self.table.caps_for(team, agent)
        if not caps.any:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_WAIT_S
        try:
            while True:
                fut = loop.run_in_executor(
                    self._pool,
                    lambda: reserve(
                        self.store,
                        org,
                        task,
                        request_id,
                        caps,
                        worst_tokens,
                        worst_cost_nanos,
                        stale_ms=self.stale_ms,
                    ),
                )
                try:
                    return await asyncio.shield(fut)
                except asyncio.CancelledError:
                    # The request was cancelled while its hold was being taken: drop the
                    # hold once taken (the call never went upstream).
                    fut.add_done_callback(self._drop)
                    raise
                except InFlight as exc:
                    # The task's other calls are still settling (often on another replica,
                    # a few milliseconds behind): wait for them rather than refuse early.
                    if loop.time() >= deadline:
                        raise TaskCapExceeded(exc.message) from None
                    await asyncio.sleep(HOLD_POLL_S)
        except TaskCapExceeded:
            raise
        except Exception as exc:  # a cap that cannot be checked is not bypassed
            log.error("task caps unavailable: %s", exc)
            raise ServiceUnavailable(
                "The gateway cannot reach its database to check this task's caps; retry."
            ) from exc

    def settle(self, hold: Hold, tokens: int, cost_nanos: int | None) -> None:
        """Queued (not awaited): the caller's response is not held up by the database."""
        try:
            fut = self._pool.submit(self._settle, hold, tokens, cost_nanos)
        except RuntimeError:  # shut down: a call that ended during shutdown settles here
            self._settle(hold, tokens, cost_nanos)
            return
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)

    def _drop(self, fut: asyncio.Future[Hold]) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self._pool.submit(self._release, fut.result())

    def _release(self, hold: Hold) -> None:
        try:
            release(self.store, hold)
        except Exception as exc:
            log.error("task cap hold for %s not released: %s", hold.task[:80], exc)

    def _settle(self, hold: Hold, tokens: int, cost_nanos: int | None) -> None:
        try:
            settle(self.store, hold, tokens, cost_nanos)
        except Exception as exc:  # the hold goes stale and stops counting after a while
            log.error("task cap settlement for %s failed: %s", hold.task[:80], exc)

    def close(self) -> None:
        """Wait for queued settlements, then stop the thread."""
        self._pool.shutdown(wait=True)


__all__ = [
    "NO_CAPS",
    "CapOffice",
    "CapTable",
    "Caps",
    "Hold",
    "InFlight",
    "release",
    "reserve",
    "settle",
]
