"""The budget engine against a real ledger database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from tokenomy.budgets import storage
from tokenomy.budgets.alerts import AlertSink
from tokenomy.budgets.engine import BudgetEngine, Demand
from tokenomy.budgets.model import BUDGET, RATE_LIMIT
from tokenomy.database import open_database
from tokenomy.errors import BudgetExceeded, RateLimited
from tokenomy.ledger.store import Store


def _set(
    store: Store,
    scope: str,
    limit: int,
    unit: str = "usd",
    period: str = "month",
    hard: bool = True,
    alerts: tuple[Decimal, ...] = (),
    kind: str = BUDGET,
) -> None:
    storage.set_budget(
        store,
        kind=kind,
        scope=scope,
        unit=unit,
        limit=limit,
        period=period,
        hard=hard,
        alerts=alerts,
    )


def _status(store: Store, scope: str) -> storage.BudgetStatus:
    (b,) = [b for b in storage.list_budgets(store) if b.scope == scope]
    (st,) = storage.status(store, [b])
    return st


async def test_concurrent_admissions_never_exceed_a_hard_limit(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 1_000)
    engine = BudgetEngine(store)
    await engine.start()
    admitted = refused = 0

    async def request() -> None:
        nonlocal admitted, refused
        try:
            res = await engine.admit(engine.applicable(["team:t"]), Demand(30, 0))
        except BudgetExceeded:
            refused += 1
            return
        admitted += 1
        await asyncio.sleep(random.random() / 100)
        engine.settle(res, 30, 0)

    await asyncio.gather(*(request() for _ in range(200)))
    await engine.close()
    st = _status(store, "team:t")
    assert admitted == 33 and refused == 167  # 33 x 30 = 990 <= 1000 < 34 x 30
    assert st.spent == 990
    assert st.reserved == 0  # every lease handed back
    store.close()


async def test_settle_releases_unused_reservation(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "user:u", 100)
    engine = BudgetEngine(store)
    await engine.start()
    res = await engine.admit(engine.applicable(["user:u"]), Demand(100, 0))
    with pytest.raises(BudgetExceeded, match=r"Budget exceeded for user:u"):
        await engine.admit(engine.applicable(["user:u"]), Demand(1, 0))
    engine.settle(res, 40, 0)  # the call cost less than its worst case
    engine.settle(res, 40, 0)  # a second settle of the same reservation is a no-op
    assert engine.local_reserved() == 0
    res2 = await engine.admit(engine.applicable(["user:u"]), Demand(60, 0))
    engine.settle(res2, 60, 0)
    await engine.flush()
    with pytest.raises(BudgetExceeded):
        await engine.admit(engine.applicable(["user:u"]), Demand(1, 0))
    await engine.close()
    assert _status(store, "user:u").spent == 100
    store.close()


async def test_all_or_nothing_across_scopes(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 1_000_000)
    _set(store, "key:k", 50)
    engine = BudgetEngine(store)
    await engine.start()
    with pytest.raises(BudgetExceeded, match="key:k"):
        await engine.admit(engine.applicable(["org:o", "team:t", "key:k"]), Demand(51, 0))
    # The team reservation made before the key refused was not kept.
    assert engine.local_reserved() == 0
    res = await engine.admit(engine.applicable(["org:o", "team:t", "key:k"]), Demand(50, 0))
    assert engine.local_reserved() == 100  # 50 on team:t and 50 on key:k
    engine.settle(res, 10, 0)
    await engine.close()
    assert _status(store, "team:t").spent == 10 and _status(store, "key:k").spent == 10
    store.close()


async def test_token_budget_counts_tokens(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "agent:a", 1_000, unit="tokens", period="day")
    engine = BudgetEngine(store)
    await engine.start()
    res = await engine.admit(
        engine.applicable(["agent:a"]), Demand(None, 900)
    )  # no price needed for tokens
    with pytest.raises(BudgetExceeded, match="1,000 tokens"):
        await engine.admit(engine.applicable(["agent:a"]), Demand(None, 200))
    engine.settle(res, None, 700)
    res = await engine.admit(engine.applicable(["agent:a"]), Demand(None, 300))
    engine.settle(res, None, 300)
    await engine.close()
    assert _status(store, "agent:a").spent == 1_000
    store.close()


async def test_unknown_price_cannot_pass_a_hard_usd_budget(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 10**9)
    engine = BudgetEngine(store)
    await engine.start()
    with pytest.raises(BudgetExceeded, match="no known price"):
        await engine.admit(engine.applicable(["team:t"]), Demand(None, 10))
    await engine.close()
    store.close()


async def test_period_reset(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 100, period="day")
    now = [1_795_000_000_000]  # some instant; the day boundary is computed from it
    engine = BudgetEngine(store, clock=lambda: now[0])
    await engine.start()
    res = await engine.admit(engine.applicable(["team:t"]), Demand(100, 0))
    engine.settle(res, 100, 0)
    with pytest.raises(BudgetExceeded, match="resets 20"):
        await engine.admit(engine.applicable(["team:t"]), Demand(1, 0))
    now[0] += 86_400_000  # the next day
    res = await engine.admit(engine.applicable(["team:t"]), Demand(100, 0))
    engine.settle(res, 100, 0)
    await engine.close()
    store.close()


async def test_soft_budget_alerts_fire_once_per_threshold(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "team:t", 100, hard=False, alerts=(Decimal("0.5"), Decimal("0.8"), Decimal("1")))
    sink = AlertSink()
    engine = BudgetEngine(store, alerts=sink)
    await engine.start()
    for _ in range(15):  # 150 spent on a soft limit of 100: never refused
        res = await engine.admit(engine.applicable(["team:t"]), Demand(10, 0))
        engine.settle(res, 10, 0)
        await engine.flush()
    # A second gateway process sees the same spend but must not alert again.
    other = BudgetEngine(store, alerts=AlertSink())
    await other.start()
    res = await other.admit(other.applicable(["team:t"]), Demand(10, 0))
    other.settle(res, 10, 0)
    await other.close()
    await engine.close()
    assert [a["threshold"] for a in sink.sent] == ["0.5", "0.8", "1"]
    assert other.alerts is not None and other.alerts.sent == []  # type: ignore[attr-defined]
    assert _status(store, "team:t").spent == 160
    store.close()


async def test_rate_limit_requests_per_minute(db_url: str) -> None:
    store = open_database(db_url)
    _set(store, "key:k", 3, unit="requests", period="minute", kind=RATE_LIMIT)
    engine = BudgetEngine(store)
    await engine.start()
    for _ in range(3):
        engine.settle(await engine.admit(engine.applicable(["key:k"]), Demand(None, 10)), None, 10)
    with pytest.raises(RateLimited) as info:
        await engine.admit(engine.applicable(["key:k"]), Demand(None, 10))
    assert 1 <= int(info.value.headers["retry-after"]) <= 60
    await engine.close()
    store.close()


async def test_two_engines_share_one_limit(db_url: str) -> None:
    """Two gateway processes' engines on one database: together they stay within the limit."""
    store_a, store_b = open_database(db_url), open_database(db_url)
    _set(store_a, "org:o", 5_000)
    a, b = BudgetEngine(store_a), BudgetEngine(store_b)
    await a.start()
    await b.start()
    spent = 0

    async def request(engine: BudgetEngine) -> None:
        nonlocal spent
        try:
            res = await engine.admit(engine.applicable(["org:o"]), Demand(70, 0))
        except BudgetExceeded:
            return
        await asyncio.sleep(0)
        spent += 70
        engine.settle(res, 70, 0)

    await asyncio.gather(*(request(a if i % 2 else b) for i in range(300)))
    await a.close()
    await b.close()
    st = _status(store_a, "org:o")
    assert st.spent == spent <= 5_000
    assert 5_000 - spent < 70
    assert st.reserved == 0
    store_a.close()
    store_b.close()
