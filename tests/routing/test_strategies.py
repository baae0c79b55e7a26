"""Every strategy picks the deployment it promises, seen from the fakes' logs."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.gateway.harness import running_fleet
from tests.routing.helpers import chat
from tokenomy.config import parse_config
from tokenomy.routing import strategies
from tokenomy.routing.stats import Stats


def two(strategy: str, a: dict[str, Any], b: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "m", "strategy": strategy, "deployments": [a, b], **extra}]


async def test_priority_serves_from_the_first_deployment(sqlite_url: str) -> None:
    models = two(
        "priority", {"provider": "box", "model": "gemma"}, {"provider": "cloud", "model": "gpt-4o"}
    )
    async with running_fleet(sqlite_url, models) as f:
        for _ in range(3):
            status, _, headers = await chat(f, "m")
            assert status == 200
            assert headers["x-tokenomy-deployment"] == "box/gemma"
            assert headers["x-tokenomy-location"] == "local"
            assert headers["x-tokenomy-attempts"] == "1"
            assert "x-tokenomy-fallback-reason" not in headers
        assert f.served() == {"cloud": 0, "cloud2": 0, "box": 3, "ant": 0}
        evs = f.events()
        assert {(e.deployment, e.location, e.attempts, e.fallback_reason) for e in evs} == {
            ("box/gemma", "local", 1, "")
        }


async def test_cheapest_serves_from_the_cheapest_priced_deployment(sqlite_url: str) -> None:
    models = two(
        "cheapest",
        {"provider": "cloud", "model": "gpt-4o", "price": "dear"},
        {"provider": "cloud2", "model": "gpt-4o", "price": "cheap"},
    )
    async with running_fleet(sqlite_url, models) as f:
        for _ in range(3):
            assert (await chat(f, "m"))[0] == 200
        assert f.served()["cloud"] == 0 and f.served()["cloud2"] == 3


async def test_cheapest_puts_unpriced_deployments_last(sqlite_url: str) -> None:
    models = two(
        "cheapest",
        {"provider": "cloud", "model": "mystery-model-9"},
        {"provider": "box", "model": "gemma", "price": "box"},
    )
    async with running_fleet(sqlite_url, models) as f:
        assert (await chat(f, "m"))[0] == 200
        assert f.served()["box"] == 1 and f.served()["cloud"] == 0


async def test_fastest_moves_to_the_deployment_measured_fastest(sqlite_url: str) -> None:
    models = two(
        "fastest",
        {"provider": "cloud", "model": "fake-slow-300ms"},
        {"provider": "cloud2", "model": "gpt-4o"},
    )
    async with running_fleet(sqlite_url, models) as f:
        # Unmeasured deployments are tried first: one call each, then the faster wins.
        for _ in range(2):
            assert (await chat(f, "m", stream=True))[0] == 200
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 1
        for _ in range(3):
            assert (await chat(f, "m", stream=True))[0] == 200
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 4
        stats = f.gateway.router.stats(f.settings.models["m"].deployments[0])
        assert stats.samples == 1 and stats.ttft_s >= 0.3


async def test_least_busy_avoids_the_deployment_with_calls_in_flight(sqlite_url: str) -> None:
    models = two(
        "least-busy",
        {"provider": "cloud", "model": "fake-slow-500ms"},
        {"provider": "cloud2", "model": "gpt-4o"},
    )
    async with running_fleet(sqlite_url, models) as f:
        slow = asyncio.create_task(chat(f, "m"))
        while not f.fakes["cloud"].requests:  # the first call is in flight on cloud
            await asyncio.sleep(0.01)
        for _ in range(3):
            assert (await chat(f, "m"))[0] == 200
        assert (await slow)[0] == 200
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 3


async def test_weighted_spreads_by_weight_and_zero_weight_only_as_fallback(
    sqlite_url: str,
) -> None:
    models = two(
        "weighted",
        {"provider": "cloud", "model": "gpt-4o", "weight": 0},
        {"provider": "cloud2", "model": "gpt-4o", "weight": 1},
    )
    async with running_fleet(sqlite_url, models) as f:
        for _ in range(5):
            assert (await chat(f, "m"))[0] == 200
        assert f.served()["cloud"] == 0 and f.served()["cloud2"] == 5


def test_weighted_order_follows_the_weights() -> None:
    settings = parse_config(
        {
            "providers": {
                "a": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"},
                "b": {"kind": "openai", "base_url": "http://127.0.0.1:2/v1"},
            },
            "models": two(
                "weighted",
                {"provider": "a", "model": "x", "weight": 3},
                {"provider": "b", "model": "x", "weight": 1},
            ),
        }
    )
    deps = settings.models["m"].deployments
    rng = random.Random(7)
    firsts = [strategies.weighted(deps, rng)[0].name for _ in range(4000)]
    share = firsts.count("a/x") / len(firsts)
    assert 0.70 < share < 0.80  # 3:1
    assert all(len(strategies.weighted(deps, rng)) == 2 for _ in range(10))


def test_fastest_and_least_busy_rank_by_the_measurements() -> None:
    settings = parse_config(
        {
            "providers": {
                "a": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"},
                "b": {"kind": "openai", "base_url": "http://127.0.0.1:2/v1"},
            },
            "models": two(
                "fastest", {"provider": "a", "model": "x"}, {"provider": "b", "model": "x"}
            ),
        }
    )
    a, b = settings.models["m"].deployments
    stats = {a.name: Stats(), b.name: Stats()}
    stats[a.name].observe(0.5, 100, 1.0)  # 0.5 s + 256 / 100 tok/s
    stats[b.name].observe(0.1, 100, 1.0)
    assert [d.name for d in strategies.fastest([a, b], lambda d: stats[d.name])] == ["b/x", "a/x"]
    stats[b.name].in_flight = 2
    assert [d.name for d in strategies.least_busy([b, a], lambda d: stats[d.name])] == [
        "a/x",
        "b/x",
    ]
