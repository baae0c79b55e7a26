"""Budget state in the shared database: definitions, spend per period, leases, alerts, audit.

The database holds, per budget and period, ``spent`` (settled) and one lease row per
gateway process (``holder``). A process may only reserve from capacity it has leased, and
a lease is granted only while ``limit - spent - sum(leases) >= need`` inside one locked
transaction, so across every replica spent + reserved never exceeds a hard limit. Leases
of a process that died stop being counted once their heartbeat is ``LEASE_TTL_MS`` old.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from tokenomy.budgets.model import BUDGET, Budget, budget_id
from tokenomy.budgets.periods import iso_utc, period_bounds
from tokenomy.ledger.store import Store

LEASE_TTL_MS = 30_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _audit(
    cur: Any, store: Store, action: str, bid: str, actor: str, detail: dict[str, Any]
) -> None:
    cur.execute(
        store._q(
            "INSERT INTO budget_audit (ts_ms, action, budget_id, actor, detail) "
            "VALUES (?, ?, ?, ?, ?)"
        ),
        (_now_ms(), action, bid, actor, orjson.dumps(detail, default=str).decode()),
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
            cur.execute(store._q(_SELECT + " WHERE kind = ? ORDER BY scope, unit"), (kind,))
        return [_row_to_budget(r) for r in cur.fetchall()]


def get_budget(store: Store, kind: str, scope: str, unit: str) -> Budget | None:
    with store.transaction() as cur:
        cur.execute(store._q(_SELECT + " WHERE id = ?"), (budget_id(kind, scope, unit),))
        r = cur.fetchone()
    return _row_to_budget(r) if r else None


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
) -> Budget:
    """Create or replace the budget of (kind, scope, unit); recorded in the audit trail."""
    bid = budget_id(kind, scope, unit)
    alerts_text = ",".join(str(a) for a in alerts)
    now = _now_ms()
    with store.transaction() as cur:
        cur.execute(store._q("SELECT limit_amount, period FROM budgets WHERE id = ?"), (bid,))
        old = cur.fetchone()
        if old is None:
            cur.execute(
                store._q(
                    "INSERT INTO budgets (id, kind, scope, unit, limit_amount, period, hard,"
                    " alerts, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (bid, kind, scope, unit, limit, period, int(hard), alerts_text, now, now),
            )
        else:
            cur.execute(
                store._q(
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
    return Budget(bid, kind, scope, unit, limit, period, hard, tuple(alerts))


def delete_budgets(
    store: Store, kind: str, scope: str, unit: str | None = None, actor: str = "cli"
) -> int:
    """Delete the budgets (of one unit, or all) on a scope; returns how many."""
    with store.transaction() as cur:
        if unit is None:
            cur.execute(
                store._q("SELECT id FROM budgets WHERE kind = ? AND scope = ?"), (kind, scope)
            )
        else:
            cur.execute(
                store._q("SELECT id FROM budgets WHERE id = ?"), (budget_id(kind, scope, unit),)
            )
        ids = [r[0] for r in cur.fetchall()]
        for bid in ids:
            cur.execute(store._q("DELETE FROM budgets WHERE id = ?"), (bid,))
            cur.execute(store._q("DELETE FROM budget_leases WHERE budget_id = ?"), (bid,))
            _audit(cur, store, "delete", bid, actor, {})
    return len(ids)


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
    now = _now_ms()
    with store.transaction() as cur:
        rows = {}
        for bid in (src_id, dst_id):
            cur.execute(store._q(_SELECT + " WHERE id = ?"), (bid,))
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
        cur.execute(
            store._q(
                "UPDATE budgets SET limit_amount = limit_amount - ?, updated_ms = ? WHERE id = ?"
            ),
            (amount, now, src_id),
        )
        cur.execute(
            store._q(
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
    """``spent`` and the sum of live leases of one budget period, read in ONE statement.

    One statement sees one snapshot: a concurrent flush moves an amount from a lease to
    ``spent`` atomically, and two separate reads under READ COMMITTED could see the lease
    already reduced but ``spent`` not yet raised, and so grant that amount twice.
    """
    cur.execute(
        store._q(
            "SELECT COALESCE((SELECT spent FROM budget_usage WHERE budget_id = ? AND "
            "period_start_ms = ?), 0), COALESCE((SELECT SUM(amount) FROM budget_leases "
            "WHERE budget_id = ? AND period_start_ms = ? AND heartbeat_ms >= ?), 0)"
        ),
        (bid, start, bid, start, live_since),
    )
    spent, leased = cur.fetchone()
    return int(spent), int(leased)


def _used(cur: Any, store: Store, bid: str, start: int, now: int) -> int:
    """spent + live leases of one budget period (the caller holds the transaction)."""
    spent, leased = _spent_and_leased(cur, store, bid, start, now - LEASE_TTL_MS)
    return spent + leased


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int  # 0: refused
    limit: int
    spent: int
    leased: int  # by every holder, after this grant

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
    tight_factor: int,
    lease_divisor: int,
    granule: int = 0,
) -> Grant | None:
    """Lease ``need`` (plus headroom when the budget is far from its limit) to ``holder``.

    Returns None when the budget no longer exists.
    """
    now = _now_ms()
    lock = " FOR UPDATE" if store.dialect == "postgresql" else ""
    with store.transaction() as cur:
        cur.execute(store._q("SELECT limit_amount FROM budgets WHERE id = ?" + lock), (bid,))
        r = cur.fetchone()
        if r is None:
            return None
        limit = int(r[0])
        cur.execute(
            store._q(
                "DELETE FROM budget_leases WHERE budget_id = ? AND "
                "period_start_ms = ? AND heartbeat_ms < ?"
            ),
            (bid, period_start, now - LEASE_TTL_MS),
        )
        # Stale leases were deleted just above: every lease left counts.
        spent, leased = _spent_and_leased(cur, store, bid, period_start, 0)
        available = limit - spent - leased
        if available < need:
            return Grant(0, limit, spent, leased)
        spare = available - need
        # Far from the limit, lease a slice of the headroom so most requests need no round
        # trip; near it, lease exactly what is needed so no capacity sits idle elsewhere.
        step = max(granule, 1)
        # Headroom in whole requests: a replica's leftover is then either enough for one
        # more request of this size or nothing, so replicas stop within one request's cost.
        extra = spare // lease_divisor // step * step if spare >= tight_factor * step else 0
        amount = need + extra
        cur.execute(
            store._q(
                "INSERT INTO budget_leases"
                " (budget_id, period_start_ms, holder, amount, heartbeat_ms)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (budget_id, period_start_ms, holder) DO UPDATE"
                " SET amount = budget_leases.amount + excluded.amount,"
                " heartbeat_ms = excluded.heartbeat_ms"
            ),
            (bid, period_start, holder, amount, now),
        )
        return Grant(amount, limit, spent, leased + amount)


@dataclass(frozen=True, slots=True)
class Settlement:
    budget_id: str
    period_start: int
    spent_delta: int  # settled spend to add to ``spent`` (and take off the lease)
    returned: int  # unused lease handed back


def flush(store: Store, holder: str, items: list[Settlement]) -> dict[tuple[str, int], int]:
    """Book settled spend and return unused leases in one transaction; heartbeat all leases.

    Returns the new ``spent`` of each (budget, period) touched, for alert checks.
    """
    now = _now_ms()
    spent: dict[tuple[str, int], int] = {}
    with store.transaction() as cur:
        # A fixed order: two replicas flushing the same budgets cannot deadlock.
        for s in sorted(items, key=lambda s: (s.budget_id, s.period_start)):
            if s.spent_delta:
                cur.execute(
                    store._q(
                        "INSERT INTO budget_usage (budget_id, period_start_ms, spent)"
                        " VALUES (?, ?, ?)"
                        " ON CONFLICT (budget_id, period_start_ms) DO UPDATE"
                        " SET spent = budget_usage.spent + excluded.spent"
                    ),
                    (s.budget_id, s.period_start, s.spent_delta),
                )
            if s.spent_delta or s.returned:
                cur.execute(
                    store._q(
                        "UPDATE budget_leases SET amount = amount - ? WHERE budget_id = ? AND "
                        "period_start_ms = ? AND holder = ?"
                    ),
                    (s.spent_delta + s.returned, s.budget_id, s.period_start, holder),
                )
            cur.execute(
                store._q(
                    "SELECT spent FROM budget_usage WHERE budget_id = ? AND period_start_ms = ?"
                ),
                (s.budget_id, s.period_start),
            )
            r = cur.fetchone()
            spent[(s.budget_id, s.period_start)] = int(r[0]) if r else 0
        cur.execute(
            store._q("DELETE FROM budget_leases WHERE holder = ? AND amount = 0"), (holder,)
        )
        cur.execute(
            store._q("UPDATE budget_leases SET heartbeat_ms = ? WHERE holder = ?"), (now, holder)
        )
    return spent


def record_alert(store: Store, bid: str, period_start: int, threshold: Decimal, spent: int) -> bool:
    """Claim an alert; True only for the first claimer (once per threshold and period)."""
    with store.transaction() as cur:
        cur.execute(
            store._q(
                "INSERT INTO budget_alerts (budget_id, period_start_ms, threshold, fired_ms, spent)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (bid, period_start, str(threshold), _now_ms(), spent),
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
    now = now_ms if now_ms is not None else _now_ms()
    out = []
    with store.transaction() as cur:
        for b in budgets:
            start, end = period_bounds(b.period, now, tz)
            spent, leased = _spent_and_leased(cur, store, b.id, start, now - LEASE_TTL_MS)
            out.append(BudgetStatus(b, start, end, spent, leased))
    return out
