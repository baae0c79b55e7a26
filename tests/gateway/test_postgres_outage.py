"""PostgreSQL down: the gateway starts anyway, says not-ready, answers 503, and recovers.

Issue 7, defect 11. The database sits behind a loopback proxy the test controls: stopped,
nothing listens on the gateway's database port (a PostgreSQL that is down); started, the
database is back. No restart of the gateway in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.fakes import FakeOpenAI
from tests.gateway.tcp_proxy import TcpProxy
from tests.gateway.test_budgets_e2e import BODY, budget_config
from tests.ports import unused_port
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.config import parse_config
from tokenomy.database import open_database
from tokenomy.gateway.app import GATEWAY_KEY, build_app
from tokenomy.gateway.proxy import Gateway


@asynccontextmanager
async def gateway_via(proxy_url: str) -> AsyncIterator[tuple[str, Gateway]]:
    async with FakeOpenAI() as oai:
        app = build_app(parse_config(budget_config(oai.base_url), "test.toml"), proxy_url)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        port = unused_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}", app[GATEWAY_KEY]
        finally:
            await runner.cleanup()


def _proxy(pg_url: str) -> tuple[TcpProxy, str]:
    pg = urlsplit(pg_url)
    proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    return proxy, pg_url.replace(f":{pg.port}/", f":{proxy.port}/")


async def _call(
    s: aiohttp.ClientSession, url: str, key: str, anthropic: bool = False
) -> tuple[int, dict[str, Any], str | None]:
    if anthropic:
        path, headers = "/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"}
    else:
        path, headers = "/v1/chat/completions", {"Authorization": f"Bearer {key}"}
    async with s.post(url + path, data=orjson.dumps(BODY), headers=headers) as resp:
        return resp.status, orjson.loads(await resp.read()), resp.headers.get("Retry-After")


async def _until_healthy(s: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        async with s.get(url + "/health") as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never became ready")


async def test_starts_with_postgres_down_and_recovers_without_restart(
    pg_url: str, upstream_keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, via_proxy = _proxy(pg_url)  # not started: nothing listens there
    try:
        async with gateway_via(via_proxy) as (url, gw), aiohttp.ClientSession() as s:
            async with s.get(url + "/health") as resp:
                assert resp.status == 503  # started, and says it is not ready
            assert gw.budgets.health()["ok"] is False
            assert gw.keys.health()["ok"] is False
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                for i in range(30):  # an unknown key cannot be checked: 503, not 401
                    status, body, retry = await _call(s, url, f"tk-unknown-{i}", i % 2 == 1)
                    assert status == 503 and retry is not None and int(retry) >= 1
                    if i % 2:
                        assert body["type"] == "error"
                        assert body["error"]["type"] == "overloaded_error"
                    else:
                        assert body["error"]["code"] == "auth_unavailable"
            # One line per outage and component, not a traceback per request.
            assert len(caplog.records) <= 2
            assert not any(r.exc_info for r in caplog.records)

            proxy.start()  # PostgreSQL is back
            await _until_healthy(s, url)  # migrated on its first connection, no restart
            assert gw.budgets.health()["ok"] and gw.keys.health()["ok"]
            store = open_database(pg_url)
            try:
                _, key = store.create_key(org="acme", team="research", user="alice")
            finally:
                store.close()
            status, body, _ = await _call(s, url, key)
            assert status == 200, body
            assert gw.writer.flush(15)
    finally:
        proxy.close()


async def test_postgres_down_new_lease_503_held_lease_still_serves(
    pg_url: str, upstream_keys: None
) -> None:
    proxy, via_proxy = _proxy(pg_url)
    proxy.start()
    store = open_database(pg_url)
    _, leased_key = store.create_key(org="acme", team="research", user="alice")
    _, other_key = store.create_key(org="acme", team="ops", user="bob")
    for team in ("research", "ops"):
        storage.set_budget(
            store, kind=BUDGET, scope=f"team:{team}", unit="usd", limit=10**12,
            period="month", hard=True,
        )  # fmt: skip
    try:
        async with gateway_via(via_proxy) as (url, gw), aiohttp.ClientSession() as s:
            status, body, _ = await _call(s, url, leased_key)  # takes a lease on research
            assert status == 200, body
            proxy.stop()  # PostgreSQL goes away
            # Admitted from the lease this process holds: still served.
            status, body, _ = await _call(s, url, leased_key)
            assert status == 200, body
            # team:ops has no lease here yet and none can be had: 503 in each client format.
            status, body, retry = await _call(s, url, other_key)
            assert status == 503 and retry is not None
            assert body["error"]["code"] == "budget_unavailable"
            status, body, _ = await _call(s, url, other_key, anthropic=True)
            assert status == 503 and body["error"]["type"] == "overloaded_error"
            assert gw.budgets.health()["ok"] is False
            proxy.start()  # back: the same call goes through, without a restart
            for _ in range(100):
                status, body, _ = await _call(s, url, other_key)
                if status == 200:
                    break
                assert status == 503
                await asyncio.sleep(0.1)
            assert status == 200, body
            assert gw.writer.flush(15)
        statuses = storage.status(store, storage.list_budgets(store))
        spent = {st.budget.scope: st.spent for st in statuses}
        assert spent["team:research"] > 0 and spent["team:ops"] > 0
    finally:
        store.close()
        proxy.close()


@pytest.fixture
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
