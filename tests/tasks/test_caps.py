"""Per-task caps: reserved before each call, across replicas; 429 task_cap_exceeded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI, RateLimitError

from tests.fakes import FakeOpenAI
from tests.gateway.harness import running_gateway
from tokenomy.config import TaskCapsSection, TasksSection
from tokenomy.database import open_database
from tokenomy.errors import TaskCapExceeded
from tokenomy.tasks.caps import Caps, CapTable, reserve, settle

STALE = 600_000


def test_reservations_bound_calls_exactly_and_tokens_within_one_call(sqlite_url: str) -> None:
    store = open_database(sqlite_url)
    try:
        calls = Caps(max_calls=2)
        a = reserve(store, "acme", "t", "r1", calls, 10, 0, stale_ms=STALE)
        reserve(store, "acme", "t", "r2", calls, 10, 0, stale_ms=STALE)
        with pytest.raises(TaskCapExceeded, match="max_calls_per_task cap: 2 calls"):
            reserve(store, "acme", "t", "r3", calls, 10, 0, stale_ms=STALE)  # two in flight
        settle(store, a, 5, 0)
        with pytest.raises(TaskCapExceeded):  # one settled, one in flight
            reserve(store, "acme", "t", "r3", calls, 10, 0, stale_ms=STALE)
        reserve(store, "acme", "other", "r4", calls, 10, 0, stale_ms=STALE)  # another task

        tokens = Caps(max_tokens=100)
        h1 = reserve(store, "acme", "u", "r1", tokens, 80, 0, stale_ms=STALE)
        h2 = reserve(store, "acme", "u", "r2", tokens, 80, 0, stale_ms=STALE)  # 80 < 100
        with pytest.raises(TaskCapExceeded, match="max_tokens_per_task"):
            reserve(store, "acme", "u", "r3", tokens, 80, 0, stale_ms=STALE)  # 160 held
        settle(store, h1, 30, 0)
        settle(store, h2, 30, 0)
        h3 = reserve(store, "acme", "u", "r3", tokens, 80, 0, stale_ms=STALE)  # 60 < 100
        settle(store, h3, 50, 0)  # 110: the call that crossed the cap completed
        with pytest.raises(TaskCapExceeded, match=r"100 tokens \(used or in flight up to 110\)"):
            reserve(store, "acme", "u", "r4", tokens, 1, 0, stale_ms=STALE)

        cost = Caps(max_cost_nanos=1_000_000)  # $0.001
        h = reserve(store, "acme", "c", "r1", cost, 0, 400_000, stale_ms=STALE)
        settle(store, h, 0, None)  # unknown cost: booked at its worst case
        reserve(store, "acme", "c", "r2", cost, 0, 700_000, stale_ms=STALE)
        with pytest.raises(TaskCapExceeded, match=r"max_cost_per_task cap: \$0.001"):
            reserve(store, "acme", "c", "r3", cost, 0, 1, stale_ms=STALE)

        duration = Caps(max_duration_ms=60_000)
        reserve(store, "acme", "d", "r1", duration, 1, 0, stale_ms=STALE, now_ms=1_000_000)
        reserve(store, "acme", "d", "r2", duration, 1, 0, stale_ms=STALE, now_ms=1_059_999)
        with pytest.raises(TaskCapExceeded, match="max_task_duration_s cap: 60 s"):
            reserve(store, "acme", "d", "r3", duration, 1, 0, stale_ms=STALE, now_ms=1_060_000)

        # A hold of a process that died stops counting once stale.
        one = Caps(max_calls=1)
        reserve(store, "acme", "s", "r1", one, 1, 0, stale_ms=1000, now_ms=5_000)
        with pytest.raises(TaskCapExceeded):
            reserve(store, "acme", "s", "r2", one, 1, 0, stale_ms=1000, now_ms=5_500)
        reserve(store, "acme", "s", "r2", one, 1, 0, stale_ms=1000, now_ms=6_001)
    finally:
        store.close()


def test_the_most_specific_cap_wins() -> None:
    section = TasksSection(
        max_calls_per_task=10,
        max_tokens_per_task=1000,
        teams={"research": TaskCapsSection(max_calls_per_task=5)},
        agents={"bulk": TaskCapsSection(max_calls_per_task=50)},
    )
    table = CapTable(section)
    assert table.active
    assert table.caps_for("ops", "") == Caps(max_tokens=1000, max_calls=10)
    assert table.caps_for("research", "") == Caps(max_tokens=1000, max_calls=5)
    assert table.caps_for("research", "bulk") == Caps(max_tokens=1000, max_calls=50)
    assert not CapTable(TasksSection()).active


async def test_the_gateway_refuses_the_call_past_a_cap_and_the_sdk_does_not_retry(
    sqlite_url: str, upstream_keys: None
) -> None:
    sections = {
        "tasks": {
            "max_calls_per_task": 10,
            "teams": {"research": {"max_calls_per_task": 3}},
            "agents": {"bulk": {"max_calls_per_task": 5}},
        }
    }
    async with running_gateway(sqlite_url, sections=sections) as h:
        client = AsyncOpenAI(base_url=h.openai_base, api_key=h.key)  # retries on 429 by default

        async def call(task: str, agent: str = "", stream: bool = False) -> None:
            answer = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hello"}],
                extra_headers={"X-Tokenomy-Task": task, "X-Tokenomy-Agent": agent},
                stream=stream,
            )
            if stream:
                async for _ in answer:  # type: ignore[union-attr]
                    pass

        for i in range(3):
            await call("capped", stream=i == 1)  # streams hold and settle the same way
        with pytest.raises(RateLimitError) as info:
            await call("capped")
        error = info.value.body
        assert isinstance(error, dict) and error["code"] == "task_cap_exceeded"
        assert error["type"] == "task_cap_exceeded"
        assert "max_calls_per_task cap: 3 calls" in error["message"]
        assert len(h.openai.requests) == 3  # refused before the upstream, and not retried
        for _ in range(5):
            await call("bulk-task", "bulk")
        with pytest.raises(RateLimitError):
            await call("bulk-task", "bulk")
        await call("fresh")  # another task is not affected
        await client.close()
        refused = [e for e in h.events() if e.error_kind == "task_cap_exceeded"]
        assert [(e.task, e.status) for e in refused] == [("capped", 429), ("bulk-task", 429)]


async def _post(
    s: aiohttp.ClientSession, url: str, key: str, task: str, max_tokens: int = 20
) -> tuple[int, dict[str, Any]]:
    body = {
        "model": "metered",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "one two three four five six seven"}],
    }
    async with s.post(
        f"{url}/v1/chat/completions",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "X-Tokenomy-Task": task},
    ) as r:
        return r.status, orjson.loads(await r.read())


async def test_caps_hold_across_two_replicas(pg_url: str, tmp_path: Path) -> None:
    from tests.gateway.replica_procs import serve

    extra = "[tasks]\nmax_calls_per_task = 7\n"
    tokens_cap = "\n[tasks.teams.tokens]\nmax_calls_per_task = 1000\nmax_tokens_per_task = 120\n"
    async with FakeOpenAI() as oai:
        store = open_database(pg_url)
        _, key = store.create_key(org="acme", team="research", user="alice")
        _, tkey = store.create_key(org="acme", team="tokens", user="tom")
        try:
            with serve([pg_url, pg_url], oai.base_url, tmp_path, {}, extra + tokens_cap) as reps:
                a, b = (r.url for r in reps)
                async with aiohttp.ClientSession() as s:
                    # 30 calls of one task at once, spread over both replicas.
                    got = await asyncio.gather(
                        *(_post(s, (a, b)[i % 2], key, "shared") for i in range(30))
                    )
                    ok = [st for st, _ in got if st == 200]
                    refused = [body for st, body in got if st == 429]
                    assert len(ok) == 7 and len(refused) == 23  # exact: never over
                    assert all(r["error"]["code"] == "task_cap_exceeded" for r in refused)
                    # Tokens: sequential calls alternate replicas; the one that crosses
                    # completes, the next is refused (overshoot at most one call).
                    used, statuses = [], []
                    for i in range(20):
                        st, body = await _post(s, (a, b)[i % 2], tkey, "tok")
                        statuses.append(st)
                        if st == 200:
                            used.append(body["usage"]["total_tokens"])
                    assert 429 in statuses
                    first_refusal = statuses.index(429)
                    assert all(st == 429 for st in statuses[first_refusal:])
                    assert sum(used[:-1]) < 120 <= sum(used) < 120 + max(used)
        finally:
            store.close()
