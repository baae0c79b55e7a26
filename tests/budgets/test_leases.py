"""Lease fencing, spend rebuilt from the ledger, and a database that is down (issue 7)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.builders import usage_event
from tests.ports import unused_port
from tokenomy.budgets import storage
from tokenomy.budgets.engine import BudgetEngine, Demand
from tokenomy.budgets.model import BUDGET, RATE_LIMIT
from tokenomy.database import open_database
from tokenomy.errors import AuthUnavailable, BudgetExceeded, BudgetUnavailable
from tokenomy.events import Usage, UsageEvent
from tokenomy.gateway.auth import KeyCache
from tokenomy.ledger.store import Store

TTL_MS = 300


def _set(store: Store, scope: str, limit: int, unit: str = "usd", **kw: object) -> None:
    storage.set_budget(
        store, kind=str(kw.get("kind", BUDGET)), scope=scope, unit=unit, limit=limit,
        period=str(kw.get("period", "month")), hard=bool(kw.get("hard", True)),
    )  # fmt: skip


def _spent(store: Store, scope: str, unit: str = "usd") -> int:
    (b,) = [b for b in storage.list_budgets(store, BUDGET) if b.scope == scope and b.unit == unit]
    (st,) = storage.status(store, [b])
    return st.spent


def _stall(engine: BudgetEngine) -> None:
    """No heartbeat any more, as if the process were frozen (its background task stops)."""
    assert engine._task is not None
    engine._task.cancel()


def _lease_rows(store: Store) -> list[tuple[str, int, int]]:
    with store.transaction() as cur:
        cur.execute("SELECT holder, epoch, amount FROM budget_leases ORDER BY holder, epoch")
        return [(r[0], int(r[1]), int(r[2])) for r in cur.fetchall()]


async def test_a_lease_is_not_spent_from_past_its_ttl(sqlite_url: str) -> None:
    store = open_database(sqlite_url)
    _set(store, "team:t", 10**9)
    engine = BudgetEngine(store, lease_ttl_ms=TTL_MS)
    await engine.start()
    budgets = engine.applicable(["team:t"])
    engine.settle(await engine.admit(budgets, Demand(10, 0)), 10, 0)
    res = engine.try_admit(budgets, Demand(10, 0))  # from the headroom it holds
    assert res is not None
    engine.settle(res, 10, 0)
    _stall(engine)
    await asyncio.sleep(TTL_MS / 1000)
    # Plenty of balance left, but the lease may be stale for others by now: no admission
    # from it without going through the database.
    assert engine.try_admit(budgets, Demand(10, 0)) is None
    res = await engine.admit(budgets, Demand(10, 0))  # stale: fenced, a new epoch leased
    engine.settle(res, 10, 0)
    assert engine.health()["fenced_leases_draining"] == 1
    await engine.flush()  # books the old epoch's spend and hands its balance back
    assert engine.health()["fenced_leases_draining"] == 0
    (row,) = _lease_rows(store)  # only the new epoch is left
    assert row[0] == engine.holder
    await engine.close()
    assert _spent(store, "team:t") == 30
    assert _lease_rows(store) == []
    store.close()


async def test_a_fenced_lease_counts_until_its_holder_settles_it(db_url: str) -> None:
    limit = 100_000
    store_a, store_b = open_database(db_url), open_database(db_url)
    _set(store_a, "org:o", limit)
    a = BudgetEngine(store_a, lease_ttl_ms=TTL_MS)
    b = BudgetEngine(store_b, lease_ttl_ms=TTL_MS)
    await a.start()
    await b.start()
    need = Demand(1_000, 0)
    in_flight = await a.admit(a.applicable(["org:o"]), need)  # A leases headroom too
    _stall(a)
    await asyncio.sleep(TTL_MS / 1000 + 0.05)  # A's lease is stale now
    spent_b = 0
    with pytest.raises(BudgetExceeded):
        while True:  # B takes everything it can: all but what A still holds
            b.settle(await b.admit(b.applicable(["org:o"]), need), 1_000, 0)
            spent_b += 1_000
    assert spent_b < limit - 1_000
    # A wakes up: its call in flight settles, its lease is fenced, and it can only
    # use what it hands back through the database.
    a.settle(in_flight, 1_000, 0)
    spent_a = 1_000
    with pytest.raises(BudgetExceeded):
        while True:
            a.settle(await a.admit(a.applicable(["org:o"]), need), 1_000, 0)
            spent_a += 1_000
            await a.flush()
    await a.close()
    await b.close()
    assert spent_a + spent_b == _spent(store_a, "org:o") <= limit
    assert _lease_rows(store_a) == []
    store_a.close()
    store_b.close()


def test_a_lease_can_never_be_negative(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 1_000)
    (b,) = storage.list_budgets(store)
    grant = storage.grant_lease(
        store, b.id, 0, "h", 100, tight_factor=64, lease_divisor=16, granule=100
    )
    assert grant is not None and grant.granted == 100
    # Settling more than the lease holds clamps it at 0 (and deletes it) ...
    storage.flush(store, "h", [storage.Settlement(b.id, 0, grant.epoch, 150, 0)])
    assert _lease_rows(store) == []
    # ... and the database refuses a negative amount outright.
    with pytest.raises(Exception, match=r"(?i)check|constraint"), store.transaction() as cur:
        cur.execute(
            "INSERT INTO budget_leases (budget_id, period_start_ms, holder, epoch, amount,"
            " heartbeat_ms) VALUES ('x', 0, 'h', 1, -1, 0)"
        )
    store.close()


async def test_spend_is_rebuilt_from_the_ledger_at_start(db_url: str) -> None:
    store = open_database(db_url)
    now = int(time.time() * 1000)
    _set(store, "team:research", 10**9)
    _set(store, "user:alice", 10**6, unit="tokens")
    _set(store, "key:k1", 100, unit="requests")
    _set(store, "agent:bot", 10**9, hard=False)
    _set(store, "org:acme", 10**9)
    _set(store, "key:k1", 60, unit="requests", period="minute", kind=RATE_LIMIT)
    # budget_usage already knows more for the org than the ledger: it stays.
    storage.flush(store, "h", [storage.Settlement("budget/org:acme/usd", _month(now), 0, 10**6, 0)])

    def event(i: int, **kw: object) -> UsageEvent:
        base: dict[str, object] = {
            "ts_ms": now - i, "model": "m", "org": "acme", "team": "research",
            "user": "alice", "key_id": "k1", "agent": "bot",
            "usage": Usage(input_tokens=100, output_tokens=20), "cost_nanos": 5_000,
        }  # fmt: skip
        return usage_event(i, **{**base, **kw})

    # Booked to the ledger (a killed process's last calls), never flushed to budget_usage.
    store.insert_events(
        [event(i) for i in range(4)]
        + [event(10, team="other", user="bob", key_id="k2", agent="")]
        + [event(11, ts_ms=_month(now) - 1)]  # last month
        + [event(12, status=429, error_kind="budget_exceeded", cost_nanos=0, usage=Usage())]
        + [event(13, status=499, error_kind="interrupted", cost_nanos=7_000)]
    )
    replayed = [0]
    engine = BudgetEngine(store, ledger_replayed=lambda: replayed[0])
    await engine.start()
    assert _spent(store, "team:research") == 4 * 5_000 + 7_000
    # The database was down at start-up and the journal is replayed later: rebuilt again.
    store.insert_events([event(20, cost_nanos=1_000)])
    await engine.refresh()
    assert _spent(store, "team:research") == 4 * 5_000 + 7_000  # nothing replayed yet
    replayed[0] = 1
    await engine.refresh()
    assert _spent(store, "team:research") == 4 * 5_000 + 7_000 + 1_000
    store.insert_events([event(21, cost_nanos=1_000)])  # not from a replay: not rebuilt
    await engine.close()
    assert _spent(store, "team:research") == 4 * 5_000 + 7_000 + 1_000
    assert _spent(store, "user:alice", "tokens") == 6 * 120
    assert _spent(store, "key:k1", "requests") == 6  # the refused call reserved nothing
    assert _spent(store, "agent:bot") == 4 * 5_000 + 7_000 + 1_000
    assert _spent(store, "org:acme") == 10**6
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM budget_usage WHERE budget_id LIKE 'rate_limit/%'")
        assert cur.fetchone()[0] == 0
    store.close()


def _month(now_ms: int) -> int:
    from tokenomy.budgets.periods import period_bounds

    return period_bounds("month", now_ms)[0]


async def test_engine_and_key_cache_start_with_the_database_down() -> None:
    store = open_database(f"postgresql://postgres@127.0.0.1:{unused_port()}/none", migrate=False)
    engine, keys = BudgetEngine(store), KeyCache(store)
    await engine.start()  # no exception: not ready, retried in the background
    await keys.start()
    assert engine.health()["ok"] is False and engine.health()["definitions_loaded"] is False
    assert keys.health()["ok"] is False
    # Budgets unknown yet: nothing may pass unchecked.
    with pytest.raises(BudgetUnavailable) as info:
        engine.budgets_for("acme", "research", "alice", "k1", "")
    assert int(info.value.headers["retry-after"]) >= 1
    with pytest.raises(AuthUnavailable):
        await keys.authenticate("tk-some-key")
    await keys.stop()
    await engine.close()
    store.close()
