"""Lease fencing across real gateway processes on PostgreSQL (issue 7, defect 5).

One of three replicas stops for longer than a lease's TTL while the others keep spending:
frozen by SIGSTOP, or cut from PostgreSQL by a black-holing proxy. Whatever it held must
not be spent twice: final spend (budget_usage and the ledger's events) stays within the
hard limit, no lease row goes negative, and the cut-off replica answers 503, never 500.
The lease TTL is shortened to 2 s for the test (every replica reads the same setting).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from tests.fakes import FakeOpenAI
from tests.gateway.replica_procs import Replica, post, serve
from tests.gateway.tcp_proxy import TcpProxy
from tests.gateway.test_budgets_e2e import COST
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.database import open_database
from tokenomy.ledger.store import Store

TTL_S = 2.0
# A hung database call is cut after 3 s; a transaction its client left idle, after 1.5 s.
ENV = {
    "TOKENOMY_LEASE_TTL_S": str(TTL_S),
    "TOKENOMY_DB_TIMEOUT_S": "3",
    "TOKENOMY_DB_IDLE_TX_TIMEOUT_S": "1.5",
}
LIMIT = 200 * COST
STALL_S = 3 * TTL_S


class Load:
    """Workers per replica posting until told to stop; statuses kept per replica."""

    def __init__(self, session: aiohttp.ClientSession, replicas: list[Replica], key: str) -> None:
        self.statuses: list[list[int]] = [[] for _ in replicas]
        self.codes: list[list[str]] = [[] for _ in replicas]
        self._stop = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._worker(session, r.url, key, i))
            for i, r in enumerate(replicas)
            for _ in range(4)
        ]

    async def _worker(self, s: aiohttp.ClientSession, url: str, key: str, i: int) -> None:
        while not self._stop.is_set():
            status, body = await post(s, url, key)
            self.statuses[i].append(status)
            if status != 200:
                self.codes[i].append(body.get("error", {}).get("code", ""))
                await asyncio.sleep(0.02)

    def served(self) -> int:
        return sum(st.count(200) for st in self.statuses)

    async def until(self, done: Callable[[], bool]) -> None:
        for _ in range(600):
            if done():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("load never got there")

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


@asynccontextmanager
async def three_replicas(
    pg_url: str, tmp: Path, first_db: str | None = None
) -> AsyncIterator[tuple[list[Replica], Store, str]]:
    async with FakeOpenAI() as oai:
        store = open_database(pg_url)
        _, key = store.create_key(org="acme", team="research", user="alice")
        storage.set_budget(
            store, kind=BUDGET, scope="team:research", unit="usd", limit=LIMIT,
            period="month", hard=True,
        )  # fmt: skip
        try:
            with serve([first_db or pg_url, pg_url, pg_url], oai.base_url, tmp, ENV) as reps:
                yield reps, store, key
        finally:
            store.close()


def _assert_within_limit(pg_url: str, load: Load) -> None:
    after = open_database(pg_url)
    try:
        with after.transaction() as cur:
            cur.execute("SELECT COALESCE(SUM(spent), 0) FROM budget_usage")
            spent = int(cur.fetchone()[0])
            cur.execute("SELECT COUNT(*) FROM budget_leases WHERE amount < 0")
            negative = int(cur.fetchone()[0])
        events = after.events()
    finally:
        after.close()
    served = load.served()
    booked = sum(e.cost_nanos or 0 for e in events if e.status == 200)
    assert negative == 0
    assert spent <= LIMIT, f"budget_usage {spent} > limit {LIMIT} ({spent / LIMIT:.1%})"
    assert booked <= LIMIT, f"ledger {booked} > limit {LIMIT} ({booked / LIMIT:.1%})"
    assert booked == served * COST == spent  # every call served is booked, once
    assert len(events) == sum(len(st) for st in load.statuses)


async def test_sigstop_longer_than_the_lease_ttl_cannot_overspend(
    pg_url: str, tmp_path: Path
) -> None:
    async with (
        three_replicas(pg_url, tmp_path) as (reps, store, key),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s,
    ):
        await asyncio.sleep(1.2)  # the replicas load budget definitions every second
        load = Load(s, reps, key)
        # Replica 0 holds a lease with headroom when it freezes.
        await load.until(lambda: load.statuses[0].count(200) >= 10 and load.served() >= 40)
        reps[0].proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(STALL_S)  # the others spend what they can meanwhile
        reps[0].proc.send_signal(signal.SIGCONT)
        # Replica 0 resumes, finds its lease fenced, settles it out; all refuse in the end.
        await load.until(lambda: all(st[-5:] == [429] * 5 for st in load.statuses))
        await load.stop()
        await _leases_returned(store)
        # Frozen mid-transaction, replica 0 may find its connection ended by the server
        # (its locks must not block the others): then 503, never a 500.
        assert set(load.statuses[0]) <= {200, 429, 503}
        assert set(load.statuses[1] + load.statuses[2]) == {200, 429}
        assert set(load.codes[1] + load.codes[2]) == {"budget_exceeded"}
    _assert_within_limit(pg_url, load)


async def test_cut_from_postgres_longer_than_the_lease_ttl_cannot_overspend(
    pg_url: str, tmp_path: Path
) -> None:
    pg = urlsplit(pg_url)
    proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    proxy.start()
    via_proxy = pg_url.replace(f":{pg.port}/", f":{proxy.port}/")
    try:
        async with (
            three_replicas(pg_url, tmp_path, first_db=via_proxy) as (reps, store, key),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s,
        ):
            await asyncio.sleep(1.2)
            load = Load(s, reps, key)
            await load.until(lambda: load.statuses[0].count(200) >= 10 and load.served() >= 40)
            proxy.blackhole()
            await asyncio.sleep(STALL_S)
            proxy.restore()
            await load.until(lambda: all(st[-5:] == [429] * 5 for st in load.statuses))
            await load.stop()
            await _leases_returned(store)
            # The cut-off replica stopped admitting and said why: 503, never a 500.
            assert set(load.statuses[0]) <= {200, 429, 503}
            assert "budget_unavailable" in load.codes[0]
            assert set(load.statuses[1] + load.statuses[2]) == {200, 429}
        log = reps[0].log.read_text()
        assert "Traceback" not in log
        assert log.count("budget database unavailable") <= 3  # rate limited, not per call
    finally:
        proxy.close()
    _assert_within_limit(pg_url, load)


async def _leases_returned(store: Store) -> None:
    (b,) = storage.list_budgets(store, BUDGET)
    for _ in range(100):
        (st,) = storage.status(store, [b])
        if st.reserved == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"leases never handed back: {st}")
