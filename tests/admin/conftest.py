"""A running admin API on loopback over a real ledger (SQLite and PostgreSQL), and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import simplejson
from aiohttp import web

from tokenomy.admin import create_admin_key, setup_admin
from tokenomy.config import parse_config
from tokenomy.database import open_database
from tokenomy.ledger.store import Store


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def message(self) -> str:
        return str(self.body["error"]["message"])


class Admin:
    """An HTTP client of the admin API holding one admin secret."""

    def __init__(self, session: aiohttp.ClientSession, base: str, secret: str | None) -> None:
        self.session, self.base, self.secret = session, base, secret

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Any = None,
        raw: bytes | None = None,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        data = raw
        if body is not None:
            data = simplejson.dumps(body, use_decimal=True).encode()
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base + path, data=data, params=params, headers=headers
        ) as resp:
            text = await resp.text()
            assert resp.content_type == "application/json", text
            return Reply(resp.status, simplejson.loads(text, use_decimal=True))

    async def get(self, path: str, **params: Any) -> Reply:
        return await self.call("GET", path, params=params or None)

    async def put(self, path: str, body: Any) -> Reply:
        return await self.call("PUT", path, body)

    async def post(self, path: str, body: Any) -> Reply:
        return await self.call("POST", path, body)

    async def delete(self, path: str, **params: Any) -> Reply:
        return await self.call("DELETE", path, params=params or None)


@dataclass
class Server:
    base: str
    store: Store
    session: aiohttp.ClientSession
    app: web.Application

    def client(self, secret: str | None) -> Admin:
        return Admin(self.session, self.base, secret)

    def admin(self, team: str | None = None, org: str = "acme") -> Admin:
        """A global admin, or with ``team`` a team admin of (``org``, ``team``)."""
        _, secret = create_admin_key(
            self.store,
            org=org if team is not None else None,
            team=team,
            name=f"test-{team or 'global'}",
        )
        return self.client(secret)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_database(db_url)
    yield s
    s.close()


@pytest.fixture
async def server(store: Store) -> AsyncIterator[Server]:
    app = web.Application()
    setup_admin(app, store, parse_config({}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as session:
        yield Server(f"http://{host}:{port}", store, session, app)
    await runner.cleanup()


@pytest.fixture
def root(server: Server) -> Admin:
    """A global admin."""
    return server.admin()
