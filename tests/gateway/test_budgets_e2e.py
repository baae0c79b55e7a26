"""Budgets and rate limits through real gateways: no overspend, no leaked reservation.

Every request here has a cost known in advance: the custom price charges output only and
each request asks for exactly ``MAX_TOKENS`` output tokens, which the fake upstream
produces, so the worst case reserved equals the actual cost and the expected spend is
exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.fakes import FakeOpenAI
from tests.gateway.harness import config_for, running_gateway
from tests.ports import unused_port
from tokenomy.admin.keys import create_admin_key
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET, RATE_LIMIT
from tokenomy.database import open_database
from tokenomy.ledger.store import Store

MAX_TOKENS = 3
PRICE_PER_OUTPUT_TOKEN_NANOS = 10_000  # $10 per million output tokens
COST = MAX_TOKENS * PRICE_PER_OUTPUT_TOKEN_NANOS  # every request costs exactly this
BODY = {
    "model": "metered",
    "max_tokens": MAX_TOKENS,
    "messages": [{"role": "user", "content": "one two three four five six seven"}],
}


def budget_config(openai_url: str, **gateway: Any) -> dict[str, Any]:
    cfg = config_for(openai_url, "http://127.0.0.1:9", **gateway)
    cfg["models"].append(
        {
            "name": "metered",
            "deployments": [{"provider": "oai", "model": "gpt-4o-mini", "price": "output-only"}],
        }
    )
    cfg["models"].append(
        {
            "name": "broken",
            "deployments": [{"provider": "oai", "model": "fake-error-500", "price": "output-only"}],
        }
    )
    cfg["models"].append(
        {
            "name": "stalling",
            "deployments": [
                {"provider": "oai", "model": "fake-stall-3s+no-usage", "price": "output-only"}
            ],
        }
    )
    cfg["prices"]["output-only"] = {"input": "0", "output": "10"}
    return cfg


def _status(store: Store, scope: str, kind: str = BUDGET) -> storage.BudgetStatus:
    (b,) = [b for b in storage.list_budgets(store, kind) if b.scope == scope]
    (st,) = storage.status(store, [b])
    return st


async def _post(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any] = BODY
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        f"{url}/v1/chat/completions",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as resp:
        return resp.status, orjson.loads(await resp.read())


async def _wait_reserved_zero(store: Store, scope: str, kind: str = BUDGET) -> None:
    """Leases are handed back about a second after a budget goes idle."""
    for _ in range(100):
        if _status(store, scope, kind).reserved == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"reservations on {scope} never went back to 0")


async def test_500_concurrent_requests_one_gateway(db_url: str, upstream_keys: None) -> None:
    async with (
        FakeOpenAI() as oai,
        running_gateway(db_url, config=budget_config(oai.base_url)) as gw,
    ):
        limit = 100 * COST + COST // 2  # room for 100.5 requests
        storage.set_budget(
            gw.store,
            kind=BUDGET,
            scope="team:research",
            unit="usd",
            limit=limit,
            period="month",
            hard=True,
        )
        await gw.gateway.budgets.refresh()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            results = await asyncio.gather(*(_post(s, gw.url, gw.key) for _ in range(500)))
        statuses = [st for st, _ in results]
        assert statuses.count(200) == 100
        assert statuses.count(429) == 400
        refusal = next(body for st, body in results if st == 429)
        assert refusal["error"]["code"] == "budget_exceeded"
        assert "team:research" in refusal["error"]["message"]
        assert "resets 2" in refusal["error"]["message"]
        await gw.gateway.budgets.flush()
        await _wait_reserved_zero(gw.store, "team:research")
        st = _status(gw.store, "team:research")
        assert st.spent == 100 * COST  # settled spend, to the nano-dollar
        assert st.spent <= limit and limit - st.spent < COST
        assert gw.gateway.budgets.local_reserved() == 0
        events = gw.events()
        assert len(events) == 500
        assert sum(e.cost_nanos or 0 for e in events if e.status == 200) == st.spent
        assert {e.error_kind for e in events if e.status == 429} == {"budget_exceeded"}


async def test_upstream_error_and_aborted_stream_release(
    sqlite_url: str, upstream_keys: None
) -> None:
    stream_cap = 20  # the abandoned stream may produce up to 20 tokens
    limit = (stream_cap + MAX_TOKENS) * PRICE_PER_OUTPUT_TOKEN_NANOS
    async with (
        FakeOpenAI() as oai,
        running_gateway(sqlite_url, config=budget_config(oai.base_url)) as gw,
    ):
        storage.set_budget(
            gw.store,
            kind=BUDGET,
            scope="user:alice",
            unit="usd",
            limit=limit,
            period="day",
            hard=True,
        )
        await gw.gateway.budgets.refresh()
        async with aiohttp.ClientSession() as s:
            # An upstream error: the reservation goes back, nothing is spent.
            status, _ = await _post(s, gw.url, gw.key, {**BODY, "model": "broken"})
            assert status == 500
            assert gw.gateway.budgets.local_reserved() == 0
            # A stream the client abandons after the first bytes (the upstream stalls
            # half-way through its 20 words).
            words = " ".join(f"w{i}" for i in range(30))
            stream_body = {
                **BODY,
                "model": "stalling",
                "stream": True,
                "max_tokens": stream_cap,
                "messages": [{"role": "user", "content": words}],
            }
            async with s.post(
                f"{gw.url}/v1/chat/completions",
                data=orjson.dumps(stream_body),
                headers={"Authorization": f"Bearer {gw.key}"},
            ) as resp:
                assert resp.status == 200
                await resp.content.readany()
            # The gateway notices when it next writes (after the stall) and settles.
            for _ in range(100):
                if gw.gateway.budgets.local_reserved() == 0:
                    break
                await asyncio.sleep(0.1)
            assert gw.gateway.budgets.local_reserved() == 0
            (aborted,) = [e for e in gw.events() if e.model == "stalling"]
            assert aborted.status == 499 and aborted.error_kind == "client_disconnected"
            assert aborted.estimated
            assert 0 < aborted.usage.output_tokens <= stream_cap
            # No phantom reservation: only what the stream produced was spent, and the
            # rest of the budget still admits a full request.
            status, _ = await _post(s, gw.url, gw.key)
            assert status == 200
            await gw.gateway.budgets.flush()
            spent = _status(gw.store, "user:alice").spent
            assert spent == (aborted.cost_nanos or 0) + COST
            assert spent <= limit


async def test_soft_budget_webhook_fires_once_per_threshold(
    sqlite_url: str, upstream_keys: None
) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with FakeOpenAI() as oai:
            cfg = budget_config(oai.base_url)
            cfg["alerts"] = {"webhook_url": f"http://127.0.0.1:{port}/hook"}
            async with running_gateway(sqlite_url, config=cfg) as gw:
                from decimal import Decimal

                storage.set_budget(
                    gw.store,
                    kind=BUDGET,
                    scope="team:research",
                    unit="usd",
                    limit=4 * COST,
                    period="month",
                    hard=False,
                    alerts=(Decimal("0.5"), Decimal("1")),
                )
                await gw.gateway.budgets.refresh()
                async with aiohttp.ClientSession() as s:
                    for _ in range(6):  # 150%: a soft budget never refuses
                        status, _ = await _post(s, gw.url, gw.key)
                        assert status == 200
                        await gw.gateway.budgets.flush()
    finally:
        await runner.cleanup()
    assert [r["threshold"] for r in received] == ["0.5", "1"]
    assert received[0]["scope"] == "team:research" and received[0]["hard"] is False


# -- several gateway processes on one PostgreSQL database ---------------------------------


@contextmanager
def gateway_processes(n: int, db_url: str, upstream: str, tmp: Path) -> Iterator[list[str]]:
    """``n`` gateway processes on one database (replica_procs.serve, which reads this
    module's ``budget_config``: imported here, not at the top, to avoid the cycle)."""
    from tests.gateway.replica_procs import serve

    with serve([db_url] * n, upstream, tmp, {}) as replicas:
        yield [r.url for r in replicas]


@asynccontextmanager
async def replicas(n: int, pg_url: str, tmp: Path) -> AsyncIterator[tuple[list[str], Store, str]]:
    async with FakeOpenAI() as oai:
        store = open_database(pg_url)
        _, key = store.create_key(org="acme", team="research", user="alice")
        try:
            with gateway_processes(n, pg_url, oai.base_url, tmp) as urls:
                yield urls, store, key
        finally:
            store.close()


async def _wait_definitions(store: Store, urls: list[str], count: int) -> None:
    """Until every replica has loaded ``count`` budgets and limits (they reload every second,
    later on a loaded machine), as its /health says to a global admin key."""
    _, admin = create_admin_key(store)
    headers = {"Authorization": f"Bearer {admin}"}
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as s:
        for url in urls:
            while True:
                async with s.get(url + "/health", headers=headers) as r:
                    state = await r.json()
                if state.get("budgets", {}).get("definitions") == count:
                    break
                assert time.monotonic() < deadline, f"{url} never loaded the budgets: {state}"
                await asyncio.sleep(0.1)


async def test_500_concurrent_requests_three_gateways_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    async with replicas(3, pg_url, tmp_path) as (urls, store, key):
        limit = 150 * COST
        storage.set_budget(
            store, kind=BUDGET, scope="org:acme", unit="usd", limit=limit, period="month", hard=True
        )
        await _wait_definitions(store, urls, 1)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            results = await asyncio.gather(*(_post(s, urls[i % 3], key) for i in range(500)))
        statuses = [st for st, _ in results]
        assert statuses.count(200) + statuses.count(429) == 500
        await _wait_reserved_zero(store, "org:acme")
        st = _status(store, "org:acme")
        assert st.spent == statuses.count(200) * COST
        assert st.spent <= limit
        assert limit - st.spent < COST  # within one request's cost of the limit
    # After SIGTERM every replica has drained its ledger: one event per request.
    assert store_count(pg_url) == 500


def store_count(url: str) -> int:
    store = open_database(url)
    try:
        return store.count_events()
    finally:
        store.close()


async def test_rate_limit_shared_by_three_gateways(pg_url: str, tmp_path: Path) -> None:
    async with replicas(3, pg_url, tmp_path) as (urls, store, key):
        storage.set_budget(
            store,
            kind=RATE_LIMIT,
            scope="team:research",
            unit="requests",
            limit=20,
            period="minute",
            hard=True,
        )
        await _wait_definitions(store, urls, 1)
        # Stay inside one calendar minute, so the window cannot reset mid-test.
        if time.time() % 60 > 45:
            await asyncio.sleep(61 - time.time() % 60)
        async with aiohttp.ClientSession() as s:
            results = await asyncio.gather(*(_post(s, urls[i % 3], key) for i in range(60)))
        statuses = [st for st, _ in results]
        assert statuses.count(200) == 20
        assert statuses.count(429) == 40
        limited = next(body for st, body in results if st == 429)
        assert limited["error"]["code"] == "rate_limited"


@pytest.fixture
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")


async def test_timeout_releases_the_reservation(sqlite_url: str, upstream_keys: None) -> None:
    async with FakeOpenAI() as oai:
        cfg = budget_config(oai.base_url, request_timeout_s=0.3)
        cfg["models"].append(
            {
                "name": "sleepy",
                "deployments": [
                    {"provider": "oai", "model": "fake-slow-2s", "price": "output-only"}
                ],
            }
        )
        async with running_gateway(sqlite_url, config=cfg) as gw:
            storage.set_budget(
                gw.store,
                kind=BUDGET,
                scope="key:" + gw.store.list_keys()[0].key_id,
                unit="usd",
                limit=COST,
                period="day",
                hard=True,
            )
            await gw.gateway.budgets.refresh()
            async with aiohttp.ClientSession() as s:
                status, body = await _post(s, gw.url, gw.key, {**BODY, "model": "sleepy"})
                assert status == 504 and body["error"]["code"] == "upstream_timeout"
                assert gw.gateway.budgets.local_reserved() == 0
                status, _ = await _post(s, gw.url, gw.key)  # the whole budget is still there
                assert status == 200


async def test_shutdown_hands_leases_back(pg_url: str, tmp_path: Path) -> None:
    async with replicas(1, pg_url, tmp_path) as (urls, store, key):
        storage.set_budget(
            store,
            kind=BUDGET,
            scope="team:research",
            unit="usd",
            limit=10**6 * COST,
            period="month",
            hard=True,
        )
        await asyncio.sleep(1.5)
        async with aiohttp.ClientSession() as s:
            for _ in range(5):
                status, _ = await _post(s, urls[0], key)
                assert status == 200
        # Far from its limit the replica holds a large lease while it is busy.
        assert _status(store, "team:research").reserved > 0
    # SIGTERM (on leaving the context) returned the lease and booked the spend at once,
    # without waiting for the lease to expire.
    after = open_database(pg_url)
    try:
        st = _status(after, "team:research")
        assert st.reserved == 0
        assert st.spent == 5 * COST
    finally:
        after.close()


async def test_shutdown_cancelling_a_request_records_and_settles(
    sqlite_url: str, upstream_keys: None
) -> None:
    from tokenomy.config import parse_config
    from tokenomy.gateway.app import STORE_KEY, build_app

    async with FakeOpenAI() as oai:
        cfg = budget_config(oai.base_url)
        cfg["models"].append(
            {
                "name": "sleepy",
                "deployments": [
                    {"provider": "oai", "model": "fake-slow-5s", "price": "output-only"}
                ],
            }
        )
        app = build_app(parse_config(cfg, "test.toml"), sqlite_url)
        store = app[STORE_KEY]
        _, key = store.create_key(org="acme", team="research", user="alice")
        storage.set_budget(
            store,
            kind=BUDGET,
            scope="team:research",
            unit="usd",
            limit=10 * COST,
            period="month",
            hard=True,
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.3)
        await runner.setup()
        port = unused_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with aiohttp.ClientSession() as s:
            pending = asyncio.create_task(
                _post(s, f"http://127.0.0.1:{port}", key, {**BODY, "model": "sleepy"})
            )
            await asyncio.sleep(0.5)  # the request is waiting on the slow upstream
            await runner.cleanup()  # shutdown gives up on it after 0.3 s and cancels it
            with pytest.raises(aiohttp.ClientError):
                await pending
    after = open_database(sqlite_url)
    try:
        (event,) = [e for e in after.events() if e.model == "sleepy"]
        assert event.status == 499 and event.error_kind == "cancelled"
        st = _status(after, "team:research")
        assert st.reserved == 0  # nothing left behind ...
        assert st.spent == COST  # ... and the unknown cost settled at its worst case
    finally:
        after.close()
