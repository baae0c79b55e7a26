"""Budgets and routing: reservations follow the deployment used; budget-aware downgrade."""

from __future__ import annotations

from typing import Any

from tests.gateway.harness import Fleet, running_fleet
from tests.routing.helpers import chat
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET

USD = 1_000_000_000  # nano-USD


async def hard_budget(f: Fleet, limit: int) -> None:
    storage.set_budget(
        f.store,
        kind=BUDGET,
        scope="team:research",
        unit="usd",
        limit=limit,
        period="month",
        hard=True,
    )
    await f.gateway.budgets.refresh()


def big_and_small(**downgrade: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "big",
            "deployments": [{"provider": "cloud", "model": "gpt-4o", "price": "dear"}],
            **({"downgrade": downgrade} if downgrade else {}),
        },
        {
            "name": "small",
            "deployments": [{"provider": "cloud2", "model": "gpt-4o-mini", "price": "cheap"}],
        },
    ]


async def test_the_reservation_follows_the_deployment_that_served(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "fake-error-503", "price": "dear"},
                {"provider": "cloud2", "model": "gpt-4o", "price": "cheap"},
            ],
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        await hard_budget(f, 1 * USD)
        for _ in range(3):
            assert (await chat(f, "m", max_tokens=50))[0] == 200
        engine = f.gateway.budgets
        assert engine.local_reserved() == 0  # every reservation released exactly once
        await engine.flush()
        evs = f.events()
        assert len(evs) == 3 and all(e.attempts == 2 and e.price_source for e in evs)
        (st,) = storage.status(f.store, storage.list_budgets(f.store, BUDGET))
        assert st.spent == sum(e.cost_nanos or 0 for e in evs) > 0
        # Priced at the deployment that served (cheap), not the one that failed (dear).
        ev = evs[0]
        cheap = (ev.usage.input_tokens * 25 + ev.usage.output_tokens * 100) * 10
        assert ev.cost_nanos == cheap


async def test_a_budget_that_refuses_the_model_downgrades_instead(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, big_and_small(to="small", at_share=0.9)) as f:
        # Room for the small model's worst case, not the big one's.
        await hard_budget(f, 1_000_000)  # $0.001
        status, body, headers = await chat(f, "big", max_tokens=100)
        assert status == 200, body
        assert headers["x-tokenomy-fallback-reason"] == "downgrade:budget_exceeded"
        assert f.served()["cloud"] == 0 and f.served()["cloud2"] == 1
        (ev,) = f.events()
        assert (ev.model, ev.upstream_model, ev.fallback_reason) == (
            "big",
            "gpt-4o-mini",
            "downgrade:budget_exceeded",
        )
        assert f.gateway.budgets.local_reserved() == 0


async def test_a_budget_past_its_share_downgrades(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, big_and_small(to="small", at_share=0.0001)) as f:
        await hard_budget(f, 1 * USD)
        _, _, first = await chat(f, "big", max_tokens=20)  # spends more than 0.01 %
        _, _, second = await chat(f, "big", max_tokens=20)
        assert first["x-tokenomy-deployment"] == "cloud/gpt-4o"
        assert "x-tokenomy-fallback-reason" not in first
        assert second["x-tokenomy-deployment"] == "cloud2/gpt-4o-mini"
        assert second["x-tokenomy-fallback-reason"].startswith("downgrade:budget_at_")


async def test_without_a_downgrade_the_budget_refuses(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, big_and_small()) as f:
        await hard_budget(f, 1_000_000)
        status, body, _ = await chat(f, "big", max_tokens=100)
        assert status == 429 and body["error"]["code"] == "budget_exceeded"
        assert f.served() == {"cloud": 0, "cloud2": 0, "box": 0, "ant": 0}


async def test_a_fallback_the_budget_cannot_afford_is_skipped(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "fake-error-503", "price": "cheap"},
                {"provider": "cloud2", "model": "gpt-4o", "price": "dear"},
                {"provider": "box", "model": "gemma", "price": "box"},
            ],
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        await hard_budget(f, 1_000_000)  # room for cheap and box, not for dear
        status, body, headers = await chat(f, "m", max_tokens=100)
        assert status == 200, body
        assert headers["x-tokenomy-deployment"] == "box/gemma"
        assert f.served() == {"cloud": 1, "cloud2": 0, "box": 1, "ant": 0}
        (ev,) = f.events()
        assert ev.attempts == 2 and f.gateway.budgets.local_reserved() == 0
