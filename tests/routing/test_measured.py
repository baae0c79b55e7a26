"""Routing keeps per-deployment stats only where a strategy reads them; breakers are public."""

from __future__ import annotations

from tests.gateway.harness import running_fleet
from tests.routing.helpers import chat


async def test_stats_are_kept_only_where_a_strategy_reads_them(sqlite_url: str) -> None:
    models = [
        {
            "name": "busy",
            "strategy": "least-busy",
            "deployments": [
                {"provider": "cloud", "model": "gpt-4o"},
                {"provider": "cloud2", "model": "gpt-4o"},
            ],
        },
        {
            "name": "pair",
            "strategy": "priority",
            "deployments": [
                {"provider": "box", "model": "gemma"},
                {"provider": "cloud2", "model": "gpt-4o-mini"},
            ],
        },
        {"name": "lone", "deployments": [{"provider": "box", "model": "gemma-2"}]},
    ]
    async with running_fleet(sqlite_url, models) as f:
        router = f.gateway.router
        assert router.measured == {"cloud/gpt-4o", "cloud2/gpt-4o"}
        for model in ("busy", "pair", "lone"):
            assert (await chat(f, model))[0] == 200
        busy = f.settings.models["busy"].deployments[0]
        assert router.stats(busy).samples == 1 and router.stats(busy).in_flight == 0
        for model in ("pair", "lone"):  # nobody reads these: not measured
            assert router.stats(f.settings.models[model].deployments[0]).samples == 0
        states = router.breaker_states()
        assert set(states) == {
            "cloud/gpt-4o",
            "cloud2/gpt-4o",
            "box/gemma",
            "cloud2/gpt-4o-mini",
            "box/gemma-2",
        }
        assert set(states.values()) == {"closed"}
