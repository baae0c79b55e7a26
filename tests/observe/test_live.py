"""Live stats (``/admin/v1/stats/live``): rates over the last seconds, a team admin's own."""

from __future__ import annotations

from decimal import Decimal

import aiohttp

from tests.gateway.harness import Harness
from tests.observe.conftest import chat
from tokenomy.admin.keys import create_admin_key
from tokenomy.events import Usage, UsageEvent
from tokenomy.observe.live import LiveStats


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _event(team: str, *, status: int = 200, cost: int = 1_000, tokens: int = 10) -> UsageEvent:
    ev = UsageEvent(
        id="r", ts_ms=0, api_format="openai", endpoint="chat.completions", model="m", status=status
    )
    ev.org, ev.team, ev.agent = "acme", team, f"agent-{team}"
    ev.usage = Usage(input_tokens=tokens, output_tokens=tokens)
    ev.cost_nanos = cost
    ev.latency_ms = 100.0 if status == 200 else 10.0
    return ev


def test_rates_over_the_window() -> None:
    clock = Clock(1000.5)
    live = LiveStats(clock)
    for _ in range(10):
        live.on_event(_event("a", cost=3_600_000), 0.0)  # 0.0036 USD each
    live.on_event(_event("b", status=500), 0.0)
    clock.now = 1005.0  # five seconds later: 4 whole seconds + this one, begun
    snap = live.snapshot(10)
    assert snap["requests"] == 11 and snap["errors"] == 1
    assert snap["error_rate"] == round(1 / 11, 4)
    assert snap["tokens"] == 11 * 20
    assert snap["cost_usd"] == "0.036001"
    assert snap["requests_per_s"] == round(11 / 9.0, 3)  # 9 whole seconds + 0.0 of this one
    assert snap["p50_ms"] == 100.0 and snap["p99_ms"] == 100.0
    teams = snap["top"]["teams"]
    assert [t["name"] for t in teams] == ["a", "b"]  # by spend
    assert Decimal(teams[0]["cost_usd_per_hour"]) == (
        Decimal("0.036") / Decimal(9) * 3600
    ).quantize(Decimal("0.000001"))
    # Older than the window: not counted; older than the horizon: forgotten.
    clock.now = 1012.0
    assert live.snapshot(5)["requests"] == 0
    assert live.snapshot(20)["requests"] == 11


def test_a_team_sees_only_itself() -> None:
    live = LiveStats(Clock(50.0))
    live.on_event(_event("a"), 0.0)
    live.on_event(_event("b"), 0.0)
    snap = live.snapshot(10, org="acme", team="b")
    assert snap["requests"] == 1
    assert [t["name"] for t in snap["top"]["teams"]] == ["b"]
    assert [t["name"] for t in snap["top"]["agents"]] == ["agent-b"]
    assert live.snapshot(10, org="globex", team="b")["requests"] == 0


async def test_served_by_the_admin_api(gw: Harness) -> None:
    await chat(gw)
    await chat(gw, "claude-sonnet")
    _, global_key = create_admin_key(gw.store)
    _, other_team = create_admin_key(gw.store, org="acme", team="design")
    url = gw.url + "/admin/v1/stats/live?window=30"
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 401
        async with s.get(url, headers={"Authorization": f"Bearer {global_key}"}) as r:
            assert r.status == 200
            snap = await r.json()
        async with s.get(url, headers={"Authorization": f"Bearer {other_team}"}) as r:
            assert r.status == 200
            theirs = await r.json()
        bad = gw.url + "/admin/v1/stats/live?window=600"
        async with s.get(bad, headers={"Authorization": f"Bearer {global_key}"}) as r:
            assert r.status == 400
    assert snap["requests"] == 2 and snap["window_s"] == 30
    assert {m["name"] for m in snap["top"]["models"]} == {"gpt-4o-mini", "claude-sonnet"}
    assert snap["top"]["teams"][0]["name"] == "research"
    assert theirs["requests"] == 0 and theirs["top"]["teams"] == []
