"""A running gateway with a ledger of known events, admin keys and a signed-in client."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from tests.builders import usage_event
from tests.gateway.harness import Harness, running_gateway
from tokenomy.admin import create_admin_key
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger.store import Store

HOUR_MS = 3_600_000
# Events live at a fixed, hour-aligned time (2026-09-21T15:00Z) and the tests ask for
# explicit ranges, so nothing depends on the clock.
START_MS = 1_790_002_800_000
SINCE, UNTIL = "2026-09-21T15:00:00Z", "2026-09-23T15:00:00Z"
TEAMS = (("acme", "research"), ("acme", "sales"), ("globex", "research"))
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "local-llama")
AGENTS = ("planner", "coder", "")


def events(n: int = 400, seed: int = 7, start_ms: int = START_MS) -> list[UsageEvent]:
    """``n`` events over 48 hours from ``start_ms``: three teams in two orgs, some failures."""
    rnd = random.Random(seed)
    out = []
    base = start_ms
    for i in range(n):
        org, team = rnd.choice(TEAMS)
        model = rnd.choice(MODELS)
        status = rnd.choice((200,) * 8 + (429, 502))
        inp, out_ = rnd.randint(10, 5000), rnd.randint(0, 2000)
        out.append(
            usage_event(
                i,
                id=f"ev{seed}-{i}",
                ts_ms=base + rnd.randint(0, 48 * HOUR_MS - 1),
                org=org,
                team=team,
                key_id=f"k-{team}",
                model=model,
                agent=rnd.choice(AGENTS),
                task=rnd.choice(("", "t1", "t2", "t3", f"t-{team}")),
                location="local" if model == "local-llama" else "cloud",
                status=status,
                usage=Usage(
                    input_tokens=inp,
                    cached_tokens=inp // 4,
                    output_tokens=out_,
                    reasoning_tokens=out_ // 5,
                ),
                cost_nanos=None if i % 37 == 0 else rnd.randint(1, 3_000_000),
                latency_ms=rnd.choice((12.5, 80.0, 300.0, 1200.0, 7000.0)),
            )
        )
    return out


@dataclass
class Dash:
    gw: Harness
    global_key: str
    research_key: str  # team admin of acme/research
    sales_key: str  # team admin of acme/sales

    @property
    def url(self) -> str:
        return self.gw.url

    @property
    def store(self) -> Store:
        return self.gw.store

    async def signed_in(self, secret: str) -> aiohttp.ClientSession:
        """A client session holding a dashboard session cookie for ``secret``."""
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        session = aiohttp.ClientSession(cookie_jar=jar)
        async with session.post(
            self.url + "/dashboard/login", data={"admin_key": secret}, allow_redirects=False
        ) as r:
            assert r.status == 303, await r.text()
        return session


@asynccontextmanager
async def dashboard(db_url: str, evs: list[UsageEvent]) -> AsyncIterator[Dash]:
    """A gateway holding ``evs``, a global admin key and two team admin keys of acme."""
    async with running_gateway(db_url) as gw:
        gw.store.insert_events(evs)
        _, g = create_admin_key(gw.store, name="root")
        _, r = create_admin_key(gw.store, org="acme", team="research", name="r")
        _, s = create_admin_key(gw.store, org="acme", team="sales", name="s")
        yield Dash(gw, g, r, s)


@pytest.fixture
async def dash(sqlite_url: str) -> AsyncIterator[Dash]:
    async with dashboard(sqlite_url, events()) as d:
        yield d
