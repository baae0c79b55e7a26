"""``tokenomy simulate`` against a running gateway: what it reports is what the ledger holds."""

from __future__ import annotations

import asyncio
import collections
import random
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from tests.gateway.harness import Harness, running_gateway
from tokenomy.money import nanos_to_usd
from tokenomy.simulate.agent import Client, Stats, Task
from tokenomy.simulate.fleet import FleetError, FleetOptions, run, shredder_kind, summary
from tokenomy.simulate.profiles import PROFILES, Profile
from tokenomy.tasks import storage


def fleet_config(failure_rate: float = 0.0) -> dict[str, Any]:
    provider = {
        "kind": "simulated",
        "tokens_per_s": 0,
        "ttft_ms": 0,
        "answer_tokens": 30,
        "failure_rate": failure_rate,
    }
    return {
        "gateway": {"ledger_flush_interval_s": 0.02},
        "providers": {"sim": provider},
        "models": [
            {"name": "sim", "deployments": [{"provider": "sim", "model": "s", "price": "p"}]}
        ],
        "prices": {"p": {"input": "2.50", "output": "10.00", "cache_read": "1.25"}},
    }


@pytest.fixture
async def gw(sqlite_url: str) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url, config=fleet_config(failure_rate=0.05)) as h:
        yield h


@pytest.fixture
async def healthy(sqlite_url: str) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url, config=fleet_config()) as h:
        yield h


def run_events(gw: Harness, run_id: str) -> list[Any]:
    return [e for e in gw.events() if e.task.startswith(f"sim-{run_id}-")]


async def test_fleet_summary_equals_the_ledger_and_outcomes_are_posted(gw: Harness) -> None:
    options = FleetOptions(
        gateway=gw.url, key=gw.key, agents=3, profile="moderate", duration_s=4.0, model="sim"
    )
    stats, elapsed, run_id = await run(options)
    data = summary(options, stats, elapsed, run_id)
    events = run_events(gw, run_id)

    assert data["calls"] == len(events) > 0
    assert data["failed_calls"] == sum(e.status != 200 for e in events) > 0  # 5% injected
    assert data["retries"] >= data["failed_calls"] - data["finished_tasks"]
    assert data["input_tokens"] == sum(e.usage.input_tokens for e in events)
    assert data["output_tokens"] == sum(e.usage.output_tokens for e in events)
    assert data["cost_usd"] == nanos_to_usd(sum(e.cost_nanos or 0 for e in events)) > 0
    assert sum(e.usage.cached_tokens for e in events) > 0  # appending agents hit the cache
    # Task headers: every call names its task, agent and step.
    assert {e.agent for e in events} == {f"sim-moderate-0{i}" for i in range(3)}
    steps = collections.Counter(e.step for e in events)
    assert set(steps) <= {"plan", "act", "observe", "reflect"}
    assert steps["plan"] and steps["act"] and steps["observe"] and steps["reflect"]
    assert len({e.task for e in events}) == data["tasks"]
    # Outcomes: one per finished task, with the value of the successes.
    found = {
        task: o
        for (_, task), o in storage.outcomes(gw.store, "acme").items()
        if task.startswith(f"sim-{run_id}-")
    }
    assert data["outcomes_posted"] == data["finished_tasks"] == len(found) > 0
    assert data["outcomes_refused"] == 0
    statuses = collections.Counter(o.status for o in found.values())
    assert statuses["succeeded"] == data["succeeded"]
    assert statuses["failed"] == data["failed"]
    value = sum((o.value_nanos or 0 for o in found.values()), 0)
    assert nanos_to_usd(value) == data["value_usd"] == Decimal("2.00") * data["succeeded"]
    assert data["cost_per_success_usd"] == (
        (data["cost_usd"] / data["succeeded"]).quantize(Decimal("0.000000001"))
        if data["succeeded"]
        else None
    )


async def test_sub_agents_link_to_their_parent_task(gw: Harness) -> None:
    profile = Profile("t", 2, 100, 50, 1, 2, Decimal("1"), Decimal("3"))
    stats = Stats()
    async with aiohttp.ClientSession() as session:
        client = Client(session, gw.url, gw.key, asyncio.Semaphore(4), stats, time.monotonic() + 30)
        await Task(client, profile, "planner", "trip-1", random.Random(0), model="sim").run()
    by_task = collections.defaultdict(list)
    for e in gw.events():
        by_task[e.task].append(e)
    assert set(by_task) == {"trip-1", "trip-1.flights", "trip-1.hotels"}
    assert {e.parent_task for e in by_task["trip-1"]} == {""}
    for sub in ("flights", "hotels"):
        assert {e.parent_task for e in by_task[f"trip-1.{sub}"]} == {"trip-1"}
        assert {e.agent for e in by_task[f"trip-1.{sub}"]} == {f"planner/{sub}"}
    assert stats.outcomes == {"succeeded": 3} and stats.outcomes_posted == 3


async def test_shredder_agents_are_caught_and_healthy_ones_are_not(sqlite_url: str) -> None:
    options = FleetOptions(gateway="", key="", agents=6, profile="moderate", shredder=True)
    moderate = PROFILES["moderate"]
    async with running_gateway(sqlite_url, config=fleet_config()) as gw:
        stats = Stats()
        async with aiohttp.ClientSession() as session:
            client = Client(
                session, gw.url, gw.key, asyncio.Semaphore(6), stats, time.monotonic() + 60
            )
            await asyncio.gather(
                *(
                    Task(
                        client,
                        moderate,
                        f"agent-{i}",
                        f"task-{i}",
                        random.Random(i),
                        shredder=shredder_kind(options, i),
                        model="sim",
                    ).run()
                    for i in range(6)
                )
            )
        gw.flush()
        found: list[Any] = []
        for _ in range(100):  # findings are stored off the request path
            found = storage.findings(gw.store)
            if len({f.agent for f in found}) >= 3:
                break
            await asyncio.sleep(0.05)
    assert {(s["agent"], s["kind"]) for s in stats.planted} == {
        ("agent-1", "loop"),
        ("agent-3", "bloat"),
        ("agent-5", "storm"),
    }
    kinds = {(f.agent, f.kind) for f in found}
    assert ("agent-1", "repeat_action") in kinds
    assert ("agent-3", "context_bloat") in kinds
    assert ("agent-5", "retry_storm") in kinds
    # Healthy agents append to a context the provider caches: nothing to report.
    assert {f.agent for f in found} == {"agent-1", "agent-3", "agent-5"}
    assert stats.outcomes["abandoned"] == 1  # the looping agent gives up


async def test_polling_agents_are_not_flagged(sqlite_url: str) -> None:
    polling = PROFILES["polling"]
    async with running_gateway(sqlite_url, config=fleet_config()) as gw:
        stats = Stats()
        async with aiohttp.ClientSession() as session:
            client = Client(
                session, gw.url, gw.key, asyncio.Semaphore(4), stats, time.monotonic() + 60
            )
            await asyncio.gather(
                *(
                    Task(
                        client, polling, f"poller-{i}", f"poll-{i}", random.Random(i), model="sim"
                    ).run()
                    for i in range(2)
                )
            )
        gw.flush()
        events = gw.events()
        await asyncio.sleep(0.3)
        found = storage.findings(gw.store)
    assert sum(stats.outcomes.values()) == 2 and stats.outcomes_posted == 2
    steps = collections.defaultdict(list)
    for e in events:
        steps[e.task].append(e.step)
    # Submit the job, check its status 5 times (1.2 s apart, the result changing), observe.
    assert dict(steps) == {t: ["act"] * 6 + ["observe"] for t in ("poll-0", "poll-1")}
    assert found == []


async def test_the_cli_drives_a_gateway_and_prints_the_summary(
    gw: Harness, sqlite_url: str
) -> None:
    args = [
        *("-m", "tokenomy.cli", "simulate", "--gateway", gw.url, "--key", gw.key),
        *("--agents", "2", "--profile", "chat", "--duration", "1", "--model", "sim"),
        *("--db", sqlite_url, "--format", "json"),
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    data = orjson.loads(out)
    events = run_events(gw, data["run_id"])
    assert data["calls"] == len(events) > 0
    assert Decimal(str(data["cost_usd"])) == nanos_to_usd(sum(e.cost_nanos or 0 for e in events))
    assert {e.step for e in events} == {"other"}
    assert data["findings"] == []


@pytest.mark.parametrize(
    ("profile", "low", "high"),
    [
        ("moderate", 80_000, 130_000),
        ("itinerary", 850_000, 1_050_000),
        ("complex", 1_000_000, None),
    ],
)
async def test_token_volumes_per_task_are_the_documented_ones(
    healthy: Harness, profile: str, low: int, high: int | None
) -> None:
    gw = healthy
    # One whole task (sub-agents included), on a model answering 30 tokens a call.
    stats = Stats()
    async with aiohttp.ClientSession() as session:
        client = Client(
            session, gw.url, gw.key, asyncio.Semaphore(4), stats, time.monotonic() + 120
        )
        task = Task(client, PROFILES[profile], "a", "t", random.Random(0), model="sim")
        await task.run()
    tokens = stats.input_tokens + stats.output_tokens
    print(f"{profile}: {tokens:,} tokens in {stats.calls} calls, {stats.tasks} task(s)")
    assert tokens >= low and (high is None or tokens <= high), tokens
    assert tokens == sum(e.usage.total_tokens for e in gw.events())


async def test_a_wrong_key_or_an_unreachable_gateway_stops_the_fleet_before_it_starts(
    healthy: Harness,
) -> None:
    with pytest.raises(FleetError, match="HTTP 401"):
        await run(FleetOptions(gateway=healthy.url, key="tk-wrong", duration_s=1, model="sim"))
    with pytest.raises(FleetError, match="cannot reach the gateway"):
        await run(FleetOptions(gateway="http://127.0.0.1:9", key="k", duration_s=1))
    assert healthy.events() == []
