"""Budget state in the shared database: definitions, spend per period, leases, alerts, audit.

The database holds, per budget and period, ``spent`` (settled) and one lease row per
gateway process (``holder``) and lease epoch. A process may only reserve from capacity it
has leased, and a lease is granted only while ``limit - spent - sum(leases) >= need`` inside
one locked transaction, so across every replica spent + reserved never exceeds a hard limit.

Fencing: a lease is *live* while its heartbeat is younger than ``LEASE_TTL_MS``. Its holder
stops admitting from it earlier, by its own monotonic clock (see ``engine``), so a lease
that went stale is never spent from again: it is *fenced*. A fenced lease is not freed at
once, because reservations its holder made before the fence may still settle; it keeps
counting against the limit until its holder settles it out (books the actual spend, hands
the rest back and deletes it) or ``LEASE_GRACE_MS`` more have passed (a process that died).
A holder never renews a fenced lease: it leases anew under a new epoch (a new row), so a
late settlement of the old epoch can never be confused with the new lease. Amounts never go
below zero (clamped, and a CHECK constraint in the database).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from tokenomy import clock
from tokenomy.budgets.model import (
    BUDGET,
    MAX_COUNT,
    MAX_USD,
    RATE_LIMIT,
    UNITS,
    Budget,
    budget_id,
    from_amount,
    parse_scope,
)
from tokenomy.budgets.periods import PERIODS, iso_utc, period_bounds
from tokenomy.ledger.store import Store
from tokenomy.money import NANOS_PER_USD


def _env_ms(name: str, default_s: float) -> int:
    """A duration in seconds from the environment (tests shorten the lease clock)."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default_s
    except ValueError:
        value = default_s
    return int(value * 1000) if 0 < value < 10**7 else int(default_s * 1000)


# Every replica must use the same values (they decide together when a lease is stale).
LEASE_TTL_MS = _env_ms("TOKENOMY_LEASE_TTL_S", 30)
# At least the longest a call may run (the gateway's request timeout, 600 s by default).
LEASE_GRACE_MS = _env_ms("TOKENOMY_LEASE_GRACE_S", 600)


def _audit(
    cur: Any, store: Store, action: str, bid: str, actor: str, detail: dict[str, Any]
) -> None:
    cur.execute(
        store.sql(
            "INSERT INTO budget_audit (ts_ms, action, budget_id, actor, detail) "
            "VALUES (?, ?, ?, ?, ?)"
        ),
        (clock.now_ms(), action, bid, actor, orjson.dumps(detail, default=str).decode()),
    )


def _row_to_budget(r: Any) -> Budget:
    bid, kind, scope, unit, limit, period, hard, alerts = r
    return Budget(
        bid,
        kind,
        scope,
        unit,
        int(limit),
        period,
        bool(hard),
        tuple(Decimal(a) for a in alerts.split(",") if a),
    )


_SELECT = "SELECT id, kind, scope, unit, limit_amount, period, hard, alerts FROM budgets"


def list_budgets(store: Store, kind: str | None = None) -> list[Budget]:
    with store.transaction() as cur:
        if kind is None:
            cur.execute(_SELECT + " ORDER BY kind, scope, unit")
        else:
            cur.execute(store.sql(_SELECT + " WHERE kind = ? ORDER BY scope, unit"), (kind,))
        return [_row_to_budget(r) for r in cur.fetchall()]


def get_budget(store: Store, kind: str, scope: str, unit: str) -> Budget | None:
    with store.transaction() as cur:
        cur.execute(store.sql(_SELECT + " WHERE id = ?"), (budget_id(kind, scope, unit),))
        r = cur.fetchone()
    return _row_to_budget(r) if r else None


def _check_definition(kind: str, scope: str, unit: str, limit: int, period: str) -> None:
    if kind not in (BUDGET, RATE_LIMIT):
        raise ValueError(f"kind must be {BUDGET} or {RATE_LIMIT}; got {kind!r}")
    parse_scope(scope)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    most = int(MAX_USD) * NANOS_PER_USD if unit == "usd" else MAX_COUNT
    if type(limit) is not int or not 0 <= limit <= most:
        raise ValueError(f"limit must be an integer from 0 to {most} ({unit}); got {limit!r}")


def set_budget(
    store: Store,
    *,
    kind: str,
    scope: str,
    unit: str,
    limit: int,
    period: str,
    hard: bool,
    alerts: Iterable[Decimal] = (),
    actor: str = "cli",
    tz: str = "UTC",
) -> Budget:
    """Create or replace the budget of (kind, scope, unit); recorded in the audit trail.

    A budget's current period starts with what the ledger already holds for its scope
    (``spent = max(spent, ledger)``): a budget created mid-period does not start at 0.

    Raises:
        ValueError: a kind, scope, unit, period or limit the gateway could not enforce
            (checked here too, not only by the CLI and the API: a budget that the engine
            cannot read would fail every request of its scope).
    """
    _check_definition(kind, scope, unit, limit, period)
    bid = budget_id(kind, scope, unit)
    alerts_text = ",".join(str(a) for a in alerts)
    now = clock.now_ms()
    with store.transaction() as cur:
        cur.execute(store.sql("SELECT limit_amount, period FROM budgets WHERE id = ?"), (bid,))
        old = cur.fetchone()
        if old is None:
            cur.execute(
                store.sql(
                    "INSERT INTO budgets (id, kind, scope, unit, limit_amount, period, hard,"
                    " alerts, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (bid, kind, scope, unit, limit, period, int(hard), alerts_text, now, now),
            )
        else:
            cur.execute(
                store.sql(
                    "UPDATE budgets SET limit_amount = ?, period = ?, hard = ?, alerts = ?,"
                    " updated_ms = ? WHERE id = ?"
                ),
                (limit, period, int(hard), alerts_text, now, bid),
            )
        _audit(
            cur,
            store,
            "set",
            bid,
            actor,
            {
                "limit": limit,
                "period": period,
                "hard": hard,
                "alerts": alerts_text,
                "previous_limit": old[0] if old else None,
            },
        )
        if kind == BUDGET:
            start, end = period_bounds(period, now, tz)
            booked = _ledger_sum(cur, store, scope, unit, start, min(end, now + 1))
            if booked > 0:
                _raise_spent(cur, store, bid, start, booked)
    return Budget(bid, kind, scope, unit, limit, period, hard, tuple(alerts))


def delete_budgets(
    store: Store, kind: str, scope: str, unit: str | None = None, actor: str = "cli"
) -> int:
    """Delete the budgets (of one unit, or all) on a scope; returns how many."""
    with store.transaction() as cur:
        if unit is None:
            cur.execute(
                store.sql("SELECT id FROM budgets WHERE kind = ? AND scope = ?"), (kind, scope)
            )
        else:
            cur.execute(
                store.sql("SELECT id FROM budgets WHERE id = ?"), (budget_id(kind, scope, unit),)
            )
        ids = [r[0] for r in cur.fetchall()]
        for bid in ids:
            cur.execute(store.sql("DELETE FROM budgets WHERE id = ?"), (bid,))
            cur.execute(store.sql("DELETE FROM budget_leases WHERE budget_id = ?"), (bid,))
            _audit(cur, store, "delete", bid, actor, {})
    return len(ids)


class TransferTooLarge(ValueError):
    """A transfer that would lift the receiving budget past the largest limit."""


def transfer(
    store: Store,
    from_scope: str,
    to_scope: str,
    amount: int,
    unit: str,
    tz: str = "UTC",
    actor: str = "cli",
) -> tuple[Budget, Budget]:
    """Move ``amount`` of limit from one budget to another of the same unit.

    Only headroom can move: what the source has already spent or handed out as leases this
    period stays with it.
    """
    if amount <= 0:
        raise ValueError("the amount to transfer must be positive")
    if from_scope == to_scope:
        raise ValueError("cannot transfer a budget to itself")
    src_id, dst_id = budget_id(BUDGET, from_scope, unit), budget_id(BUDGET, to_scope, unit)
    now = clock.now_ms()
    with store.transaction() as cur:
        rows = {}
        for bid in (src_id, dst_id):
            cur.execute(store.sql(_SELECT + " WHERE id = ?"), (bid,))
            r = cur.fetchone()
            if r is None:
                scope = from_scope if bid == src_id else to_scope
                raise ValueError(f"no {unit} budget on {scope}; create it with `budgets set`")
            rows[bid] = _row_to_budget(r)
        src = rows[src_id]
        start, _ = period_bounds(src.period, now, tz)
        used = _used(cur, store, src_id, start, now)
        if src.limit - used < amount:
            raise ValueError(
                f"{from_scope} has only {src.limit - used} {unit} of headroom "
                f"(limit {src.limit}, spent and reserved {used})"
            )
        most = int(MAX_USD) * NANOS_PER_USD if unit == "usd" else MAX_COUNT
        if rows[dst_id].limit + amount > most:
            raise TransferTooLarge(
                f"{to_scope} would pass the largest limit, {from_amount(unit, most)} {unit}"
            )
        cur.execute(
            store.sql(
                "UPDATE budgets SET limit_amount = limit_amount - ?, updated_ms = ? WHERE id = ?"
            ),
            (amount, now, src_id),
        )
        cur.execute(
            store.sql(
                "UPDATE budgets SET limit_amount = limit_amount + ?, updated_ms = ? WHERE id = ?"
            ),
            (amount, now, dst_id),
        )
        detail = {"from": from_scope, "to": to_scope, "amount": amount, "unit": unit}
        _audit(cur, store, "transfer_out", src_id, actor, detail)
        _audit(cur, store, "transfer_in", dst_id, actor, detail)
    dst = rows[dst_id]
    return (
        Budget(
            src.id, src.kind, src.scope, unit, src.limit - amount, src.period, src.hard, src.alerts
        ),
        Budget(
            dst.id, dst.kind, dst.scope, unit, dst.limit + amount, dst.period, dst.hard, dst.alerts
        ),
    )


def audit_trail(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    with store.transaction() as cur:
        cur.execute(
            f"SELECT ts_ms, action, budget_id, actor, detail FROM budget_audit "
            f"ORDER BY ts_ms DESC LIMIT {int(limit)}"
        )
        return [
            {
                "time": iso_utc(r[0], "milliseconds"),
                "action": r[1],
                "budget_id": r[2],
                "actor": r[3],
                "detail": orjson.loads(r[4]) if r[4] else {},
            }
            for r in cur.fetchall()
        ]


def _spent_and_leased(
    cur: Any, store: Store, bid: str, start: int, live_since: int
) -> tuple[int, int]:
    """``spent`` and the sum of counted leases of one budget period, read in ONE statement.

    One statement sees one snapshot: a concurrent flush moves an amount from a lease to
    ``spent`` atomically, and two separate reads under READ COMMITTED could see the lease
    already reduced but ``spent`` not yet raised, and so grant that amount twice.
    """
    cur.execute(
        store.sql(
            "SELECT COALESCE((SELECT spent FROM budget_usage WHERE budget_id = ? AND "
            "period_start_ms = ?), 0), COALESCE((SELECT SUM(amount) FROM budget_leases "
            "WHERE budget_id = ? AND period_start_ms = ? AND heartbeat_ms >= ?), 0)"
        ),
        (bid, start, bid, start, live_since),
    )
    spent, leased = cur.fetchone()
    return int(spent), int(leased)


def _counted_since(now: int, ttl_ms: int = LEASE_TTL_MS, grace_ms: int = LEASE_GRACE_MS) -> int:
    """Leases with a heartbeat since this instant count against their limit (live or fenced)."""
    return now - ttl_ms - grace_ms


def _used(cur: Any, store: Store, bid: str, start: int, now: int) -> int:
    """spent + counted leases of one budget period (the caller holds the transaction)."""
    spent, leased = _spent_and_leased(cur, store, bid, start, _counted_since(now))
    return spent + leased


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int  # 0: refused (or a renewal only)
    limit: int
    spent: int
    leased: int  # by every holder, after this grant
    epoch: int = 0  # the holder's live lease epoch after this call (0: none)
    fenced: bool = False  # the lease asked about is stale: settle it out, lease anew

    @property
    def available(self) -> int:
        return self.limit - self.spent - self.leased


def grant_lease(
    store: Store,
    bid: str,
    period_start: int,
    holder: str,
    need: int,
    *,
    epoch: int = 0,
    tight_factor: int,
    lease_divisor: int,
    granule: int = 0,
    ttl_ms: int = LEASE_TTL_MS,
    grace_ms: int = LEASE_GRACE_MS,
) -> Grant | None:
    """Lease ``need`` (plus headroom when the budget is far from its limit) to ``holder``.

    ``epoch`` is the holder's current lease on this budget period (0: none). It is renewed
    (heartbeat) and grown while live; if it went stale the answer is ``fenced`` and nothing
    is granted: the holder must settle that epoch out and ask again with ``epoch=0``, which
    opens a new epoch. Returns None when the budget no longer exists.
    """
    now = clock.now_ms()
    lock = " FOR UPDATE" if store.dialect == "postgresql" else ""
    key = (bid, period_start)
    with store.transaction() as cur:
        cur.execute(store.sql("SELECT limit_amount FROM budgets WHERE id = ?" + lock), (bid,))
        r = cur.fetchone()
        if r is None:
            return None
        limit = int(r[0])
        # Leases stale for longer than the grace period belong to holders that are gone.
        cur.execute(
            store.sql(
                "DELETE FROM budget_leases WHERE budget_id = ? AND "
                "period_start_ms = ? AND heartbeat_ms < ?"
            ),
            (*key, _counted_since(now, ttl_ms, grace_ms)),
        )
        # Every lease left counts, live or fenced: a fenced holder may still settle calls.
        spent, leased = _spent_and_leased(cur, store, bid, period_start, 0)
        mine = (*key, holder, epoch)
        if epoch:
            cur.execute(
                store.sql(
                    "SELECT heartbeat_ms FROM budget_leases WHERE budget_id = ? AND "
                    "period_start_ms = ? AND holder = ? AND epoch = ?"
                ),
                mine,
            )
            r = cur.fetchone()
            if r is None or int(r[0]) < now - ttl_ms:
                return Grant(0, limit, spent, leased, 0, fenced=True)
        available = limit - spent - leased
        if available < need:
            if epoch:  # refused, but the live lease is renewed all the same
                cur.execute(
                    store.sql(
                        "UPDATE budget_leases SET heartbeat_ms = ? WHERE budget_id = ? AND "
                        "period_start_ms = ? AND holder = ? AND epoch = ?"
                    ),
                    (now, *mine),
                )
            return Grant(0, limit, spent, leased, epoch)
        spare = available - need
        # Far from the limit, lease a slice of the headroom so most requests need no round
        # trip; near it, lease exactly what is needed so no capacity sits idle elsewhere.
        step = max(granule, 1)
        # Headroom in whole requests: a replica's leftover is then either enough for one
        # more request of this size or nothing, so replicas stop within one request's cost.
        extra = spare // lease_divisor // step * step if spare >= tight_factor * step else 0
        amount = need + extra
        if epoch:
            cur.execute(
                store.sql(
                    "UPDATE budget_leases SET amount = amount + ?, heartbeat_ms = ? WHERE "
                    "budget_id = ? AND period_start_ms = ? AND holder = ? AND epoch = ?"
                ),
                (amount, now, *mine),
            )
        else:
            # A new epoch: above every epoch this holder has (or had, before the grace
            # period removed it) on this budget period.
            cur.execute(
                store.sql(
                    "SELECT COALESCE(MAX(epoch), 0) FROM budget_leases WHERE budget_id = ? AND "
                    "period_start_ms = ? AND holder = ?"
                ),
                (*key, holder),
            )
            epoch = max(now, int(cur.fetchone()[0]) + 1)
            cur.execute(
                store.sql(
                    "INSERT INTO budget_leases"
                    " (budget_id, period_start_ms, holder, epoch, amount, heartbeat_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (*key, holder, epoch, amount, now),
            )
        return Grant(amount, limit, spent, leased + amount, epoch)


@dataclass(frozen=True, slots=True)
class Settlement:
    budget_id: str
    period_start: int
    epoch: int  # the lease the spend was reserved from (0: none, a soft budget)
    spent_delta: int  # settled spend to add to ``spent`` (and take off the lease)
    returned: int  # unused lease handed back
    drain: bool = False  # a fenced lease with nothing in flight: delete it


@dataclass(frozen=True, slots=True)
class Flushed:
    spent: dict[tuple[str, int], int]  # new ``spent`` of each (budget, period) touched
    live: set[tuple[str, int, int]]  # (budget, period, epoch) of the holder's live leases
    unleased: int  # spend booked for which no lease was left (held past the grace period)


def flush(
    store: Store, holder: str, items: list[Settlement], *, ttl_ms: int = LEASE_TTL_MS
) -> Flushed:
    """Book settled spend and return unused leases in one transaction; heartbeat live leases.

    A stale lease is not renewed: it stays fenced, and only settles out.
    """
    now = clock.now_ms()
    spent: dict[tuple[str, int], int] = {}
    unleased = 0
    with store.transaction() as cur:
        # A fixed order: two replicas flushing the same budgets cannot deadlock.
        for s in sorted(items, key=lambda s: (s.budget_id, s.period_start, s.epoch)):
            mine = (s.budget_id, s.period_start, holder, s.epoch)
            if s.spent_delta:
                cur.execute(
                    store.sql(
                        "INSERT INTO budget_usage (budget_id, period_start_ms, spent)"
                        " VALUES (?, ?, ?)"
                        " ON CONFLICT (budget_id, period_start_ms) DO UPDATE"
                        " SET spent = budget_usage.spent + excluded.spent"
                    ),
                    (s.budget_id, s.period_start, s.spent_delta),
                )
            if s.epoch and (s.spent_delta or s.returned):
                take = s.spent_delta + s.returned
                cur.execute(
                    store.sql(
                        "SELECT amount FROM budget_leases WHERE budget_id = ? AND "
                        "period_start_ms = ? AND holder = ? AND epoch = ?"
                    ),
                    mine,
                )
                r = cur.fetchone()
                if r is None:
                    unleased += s.spent_delta
                else:
                    unleased += max(0, s.spent_delta - int(r[0]))
                    cur.execute(
                        store.sql(
                            "UPDATE budget_leases SET amount = CASE WHEN amount > ? "
                            "THEN amount - ? ELSE 0 END WHERE budget_id = ? AND "
                            "period_start_ms = ? AND holder = ? AND epoch = ?"
                        ),
                        (take, take, *mine),
                    )
            if s.drain:
                cur.execute(
                    store.sql(
                        "DELETE FROM budget_leases WHERE budget_id = ? AND "
                        "period_start_ms = ? AND holder = ? AND epoch = ?"
                    ),
                    mine,
                )
            cur.execute(
                store.sql(
                    "SELECT spent FROM budget_usage WHERE budget_id = ? AND period_start_ms = ?"
                ),
                (s.budget_id, s.period_start),
            )
            r = cur.fetchone()
            spent[(s.budget_id, s.period_start)] = int(r[0]) if r else 0
        cur.execute(
            store.sql("DELETE FROM budget_leases WHERE holder = ? AND amount = 0"), (holder,)
        )
        cur.execute(
            store.sql(
                "UPDATE budget_leases SET heartbeat_ms = ? WHERE holder = ? AND heartbeat_ms >= ?"
            ),
            (now, holder, now - ttl_ms),
        )
        cur.execute(
            store.sql(
                "SELECT budget_id, period_start_ms, epoch FROM budget_leases "
                "WHERE holder = ? AND heartbeat_ms >= ?"
            ),
            (holder, now - ttl_ms),
        )
        live = {(r[0], int(r[1]), int(r[2])) for r in cur.fetchall()}
    return Flushed(spent, live, unleased)


# Ledger scope column per budget scope kind, and each unit's sum over usage events.
_SCOPE_COLUMNS = {
    "org": "org",
    "team": "team",
    "user": "user_id",
    "key": "key_id",
    "agent": "agent",
}
_UNIT_SUMS = {
    "usd": "COALESCE(SUM(cost_nanos), 0)",
    "tokens": "COALESCE(SUM(input_tokens + output_tokens), 0)",
    "requests": "COUNT(*)",
}
# Calls refused before admission reserve nothing, so they never count as requests.
_NOT_ADMITTED = (
    "budget_exceeded",
    "rate_limited",
    "budget_unavailable",
    "auth_unavailable",
    "service_unavailable",
    "invalid_api_key",
    "permission_denied",
    "model_not_found",
    "not_found",
    "request_too_large",
    "invalid_request_error",
)


def rebuild_from_ledger(
    store: Store, budgets: list[Budget], tz: str = "UTC", now_ms: int | None = None
) -> dict[str, int]:
    """Raise each budget's current-period ``spent`` to what the usage ledger holds.

    Settled spend is flushed to ``budget_usage`` a few times a second; a process killed in
    between loses that part, while its calls are in the ledger (journaled, and replayed at
    start-up, calls in flight included). So after the journal replay ``spent`` becomes
    ``max(spent, ledger)`` for every budget (rate limits are left alone). Spend another
    live replica settled but has not flushed yet may so be counted twice: the error is on
    the safe side. Returns the budgets raised, with their new ``spent``.
    """
    now = now_ms if now_ms is not None else clock.now_ms()
    # One GROUP BY query per (scope kind, unit, period), not one scan per budget.
    groups: dict[tuple[str, str, int, int], dict[str, Budget]] = {}
    for b in budgets:
        column = _SCOPE_COLUMNS.get(b.scope_kind)
        if b.kind == BUDGET and column is not None:
            start, end = period_bounds(b.period, now, tz)
            groups.setdefault((column, b.unit, start, end), {})[b.scope.partition(":")[2]] = b
    raised: dict[str, int] = {}
    with store.transaction() as cur:
        for (column, unit, start, end), by_name in groups.items():
            names = list(by_name)
            for i in range(0, len(names), 500):
                chunk = names[i : i + 500]
                sql = (
                    f"SELECT {column}, {_UNIT_SUMS[unit]} FROM usage_events "
                    f"WHERE ts_ms >= ? AND ts_ms < ? AND {column} IN "
                    f"({', '.join('?' * len(chunk))})"
                )
                args: list[Any] = [start, end, *chunk]
                if unit == "requests":
                    sql += f" AND error_kind NOT IN ({', '.join('?' * len(_NOT_ADMITTED))})"
                    args += _NOT_ADMITTED
                cur.execute(store.sql(sql + f" GROUP BY {column}"), args)
                for name, total in cur.fetchall():
                    booked, b = int(total or 0), by_name[name]
                    if booked > 0 and _raise_spent(cur, store, b.id, start, booked):
                        raised[b.id] = booked
    return raised


def _ledger_sum(cur: Any, store: Store, scope: str, unit: str, since: int, until: int) -> int:
    """What the ledger holds for one scope in ``[since, until)``, in the budget's unit."""
    kind, _, name = scope.partition(":")
    column = _SCOPE_COLUMNS.get(kind)
    if column is None:
        return 0
    sql = (
        f"SELECT {_UNIT_SUMS[unit]} FROM usage_events "
        f"WHERE ts_ms >= ? AND ts_ms < ? AND {column} = ?"
    )
    args: list[Any] = [since, until, name]
    if unit == "requests":
        sql += f" AND error_kind NOT IN ({', '.join('?' * len(_NOT_ADMITTED))})"
        args += _NOT_ADMITTED
    cur.execute(store.sql(sql), args)
    r = cur.fetchone()
    return int(r[0] or 0) if r else 0


def ledger_spend(store: Store, scope: str, unit: str, since: int, until: int) -> int:
    """The ledger's spend of ``scope`` in ``[since, until)`` (nano-USD, tokens or requests)."""
    with store.transaction() as cur:
        return _ledger_sum(cur, store, scope, unit, since, until)


def _raise_spent(cur: Any, store: Store, bid: str, start: int, booked: int) -> bool:
    """``spent = max(spent, booked)``; True if it was raised."""
    cur.execute(
        store.sql("SELECT spent FROM budget_usage WHERE budget_id = ? AND period_start_ms = ?"),
        (bid, start),
    )
    r = cur.fetchone()
    if r is not None and int(r[0]) >= booked:
        return False
    cur.execute(
        store.sql(
            "INSERT INTO budget_usage (budget_id, period_start_ms, spent) VALUES (?, ?, ?)"
            " ON CONFLICT (budget_id, period_start_ms) DO UPDATE"
            " SET spent = CASE WHEN excluded.spent > budget_usage.spent"
            " THEN excluded.spent ELSE budget_usage.spent END"
        ),
        (bid, start, booked),
    )
    return True


def record_alert(store: Store, bid: str, period_start: int, threshold: Decimal, spent: int) -> bool:
    """Claim an alert; True only for the first claimer (once per threshold and period)."""
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "INSERT INTO budget_alerts (budget_id, period_start_ms, threshold, fired_ms, spent)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (bid, period_start, str(threshold), clock.now_ms(), spent),
        )
        return bool(cur.rowcount)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    period_start: int
    period_end: int
    spent: int
    reserved: int  # capacity leased to gateways (in-flight reservations + their headroom)

    @property
    def remaining(self) -> int:
        return self.budget.limit - self.spent - self.reserved


def status(
    store: Store, budgets: list[Budget], tz: str = "UTC", now_ms: int | None = None
) -> list[BudgetStatus]:
    now = now_ms if now_ms is not None else clock.now_ms()
    out = []
    with store.transaction() as cur:
        for b in budgets:
            start, end = period_bounds(b.period, now, tz)
            spent, leased = _spent_and_leased(cur, store, b.id, start, _counted_since(now))
            out.append(BudgetStatus(b, start, end, spent, leased))
    return out
