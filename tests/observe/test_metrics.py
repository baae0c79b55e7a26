"""``GET /metrics``: the counters match the ledger, labels follow the allowlist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.harness import Harness, running_gateway
from tests.observe.conftest import chat, scrape, total
from tokenomy.admin.keys import create_admin_key
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.events import Usage, UsageEvent
from tokenomy.observe.metrics import FAMILIES, Metrics

DEFAULT_LABELS = {"org", "team", "model", "provider", "location"}


async def test_counters_equal_the_ledger(gw: Harness) -> None:
    await chat(gw, headers={"X-Tokenomy-Task": "t-1", "X-Tokenomy-Agent": "coder"})
    await chat(gw, stream=True)
    await chat(gw, "claude-sonnet")
    status, _ = await chat(gw, "no-such-model")
    assert status == 404
    samples = await scrape(gw)
    events = gw.events()
    assert len(events) == 4

    for kind, field in (
        ("input", "input_tokens"),
        ("cached", "cached_tokens"),
        ("cache_write", "cache_write_tokens"),
        ("output", "output_tokens"),
        ("reasoning", "reasoning_tokens"),
    ):
        expected = sum(getattr(e.usage, field) for e in events)
        assert total(samples, "tokenomy_tokens_total", kind=kind) == expected, kind
    assert total(samples, "tokenomy_tokens_total", kind="input") > 0
    cost = sum(Decimal(e.cost_nanos or 0) for e in events) / 10**9
    assert total(samples, "tokenomy_cost_usd_total") == pytest.approx(float(cost), rel=1e-12)
    assert total(samples, "tokenomy_requests_total", status="200") == 3
    assert total(samples, "tokenomy_requests_total", status="404") == 1
    assert total(samples, "tokenomy_request_duration_seconds_count") == 4
    assert total(samples, "tokenomy_overhead_seconds_count") == 4
    assert total(samples, "tokenomy_ttft_seconds_count") == 1  # the one stream
    # Per model and team, from the default labels; never the task or the agent.
    by_model = total(samples, "tokenomy_requests_total", model="claude-sonnet", team="research")
    assert by_model == 1
    for sample in samples["tokenomy_requests_total"]:
        assert set(sample.labels) == DEFAULT_LABELS | {"status"}
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/metrics") as r:
        text = await r.text()
    for family in FAMILIES:  # every family is declared, even before its first sample
        assert f"# TYPE {family} " in text


async def test_overhead_excludes_the_upstream_wait(gw: Harness) -> None:
    gw.openai.next_scenario.append("slow-300ms")  # the upstream waits before answering
    await chat(gw)
    samples = await scrape(gw)
    duration = total(samples, "tokenomy_request_duration_seconds_sum")
    overhead = total(samples, "tokenomy_overhead_seconds_sum")
    assert duration >= 0.3
    assert overhead <= duration - 0.3  # the 300 ms spent waiting are not the gateway's


@pytest.fixture
async def labelled(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    sections = {"metrics": {"labels": ["team", "task"]}}
    async with running_gateway(sqlite_url, sections=sections) as h:
        yield h


async def test_labels_come_from_the_config(labelled: Harness) -> None:
    await chat(labelled, headers={"X-Tokenomy-Task": "t-42"})
    samples = await scrape(labelled)
    (sample,) = samples["tokenomy_requests_total"]
    assert sample.labels == {"team": "research", "task": "t-42", "status": "200"}


@pytest.fixture
async def guarded(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url, sections={"metrics": {"require_admin_key": True}}) as h:
        yield h


async def test_admin_key_protection(guarded: Harness) -> None:
    _, global_key = create_admin_key(guarded.store)
    _, team_key = create_admin_key(guarded.store, org="acme", team="research")
    async with aiohttp.ClientSession() as s:
        async with s.get(guarded.url + "/metrics") as r:
            assert r.status == 401
        for token, status in (("tka-nope", 401), (team_key, 403), (guarded.key, 401)):
            headers = {"Authorization": f"Bearer {token}"}
            async with s.get(guarded.url + "/metrics", headers=headers) as r:
                assert r.status == status, token
    samples = await scrape(guarded, global_key)
    assert "tokenomy_requests_total" not in samples or samples["tokenomy_requests_total"]


async def test_metrics_can_be_turned_off(sqlite_url: str, upstream_keys: None) -> None:
    async with (
        running_gateway(sqlite_url, sections={"metrics": {"enabled": False}}) as h,
        aiohttp.ClientSession() as s,
        s.get(h.url + "/metrics") as r,
    ):
        assert r.status == 404


async def test_budget_remaining_and_reservations(gw: Harness) -> None:
    storage.set_budget(
        gw.store,
        kind=BUDGET,
        scope="team:research",
        unit="usd",
        limit=5 * 10**9,
        period="month",
        hard=True,
        actor="test",
    )
    samples = await scrape(gw)
    (sample,) = samples["tokenomy_budget_remaining"]
    assert sample.labels == {"scope": "team:research", "unit": "usd", "period": "month"}
    assert sample.value == 5.0
    assert samples.get("tokenomy_reservations_in_flight", []) == []  # nothing in flight


def _event(**kw: object) -> UsageEvent:
    ev = UsageEvent(
        id="r", ts_ms=0, api_format="openai", endpoint="chat.completions", model="m", status=200
    )
    for k, v in kw.items():
        setattr(ev, k, v)
    return ev


def test_fallbacks_are_counted_by_reason() -> None:
    m = Metrics(["model"])
    m.on_event(_event(fallback_reason="breaker_open"), 0.001)
    m.on_event(_event(fallback_reason="breaker_open"), 0.001)
    m.on_event(_event(fallback_reason="upstream_5xx"), 0.001)
    m.on_event(_event(), 0.001)
    text = m.exposition().decode()
    assert 'tokenomy_fallbacks_total{model="m",reason="breaker_open"} 2\n' in text
    assert 'tokenomy_fallbacks_total{model="m",reason="upstream_5xx"} 1\n' in text


def test_breaker_state_is_exposed() -> None:
    m = Metrics(["model"], breakers=lambda: {"oai/gpt-4o": True, "ant/claude": False})
    text = m.exposition().decode()
    assert 'tokenomy_breaker_open{deployment="oai/gpt-4o"} 1.0' in text
    assert 'tokenomy_breaker_open{deployment="ant/claude"} 0.0' in text


def test_cost_is_counted_in_integer_nanos() -> None:
    m = Metrics([])
    for _ in range(10):  # 0.1 + 0.2 ≠ 0.3 in floats; in nanos it is exact
        m.on_event(_event(cost_nanos=100_000_000), 0.0)
        m.on_event(_event(cost_nanos=200_000_000), 0.0)
    (series,) = m.series.values()
    assert series.cost_nanos == 3_000_000_000
    assert "tokenomy_cost_usd_total 3.0" in m.exposition().decode()


def test_ten_thousand_series_are_exposed() -> None:
    m = Metrics(["team", "model"])
    for i in range(264):  # 264 label pairs x 38 series each (tokens, histograms, ...)
        ev = _event(team=f"t{i % 20}", model=f'm"{i // 20}\n', usage=Usage(10, 2, output_tokens=5))
        m.on_event(ev, 0.001)
    text = m.exposition().decode()
    series = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(series) >= 10_000
    families = {f.name: f for f in text_string_to_metric_families(text)}  # valid text format
    tokens = families["tokenomy_tokens"].samples
    assert sum(s.value for s in tokens if s.labels["kind"] == "input") == 264 * 10
    assert {s.labels["model"] for s in tokens} == {f'm"{i}\n' for i in range(14)}  # escaped


def test_help_and_type_precede_every_family() -> None:
    m = Metrics(["team"])
    m.on_event(_event(team="a", ttft_ms=120.0), 0.002)
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    assert families["tokenomy_ttft_seconds"].type == "histogram"
    assert families["tokenomy_tokens"].type == "counter"
    buckets = [s for s in families["tokenomy_ttft_seconds"].samples if s.name.endswith("_bucket")]
    assert [s.value for s in buckets if s.labels["le"] in ("0.1", "0.25", "+Inf")] == [0, 1, 1]


async def test_routing_breakers_are_exposed(gw: Harness) -> None:
    breakers = gw.gateway.router._breakers  # a breaker opened as routing would open it
    name = next(iter(breakers))
    breakers[name].state = "open"
    samples = await scrape(gw)
    states = {s.labels["deployment"]: s.value for s in samples["tokenomy_breaker_open"]}
    assert set(states) == set(breakers)
    assert states[name] == 1 and sum(states.values()) == 1


async def test_reservations_in_flight_during_a_call(gw: Harness) -> None:
    storage.set_budget(
        gw.store,
        kind=BUDGET,
        scope="team:research",
        unit="usd",
        limit=5 * 10**9,
        period="month",
        hard=True,
        actor="test",
    )
    await gw.gateway.budgets.refresh()  # as its background loop would within a second
    gw.openai.next_scenario.append("slow-1s")
    call = asyncio.create_task(chat(gw))
    held: list[Any] = []
    for _ in range(40):  # while the upstream makes the call wait
        await asyncio.sleep(0.05)
        held = (await scrape(gw)).get("tokenomy_reservations_in_flight", [])
        if held:
            break
    status, _ = await call
    assert status == 200
    (sample,) = held
    assert sample.labels == {"scope": "team:research", "unit": "usd"} and sample.value > 0
    after = (await scrape(gw))["tokenomy_reservations_in_flight"]
    assert [s.value for s in after] == [0]  # settled
