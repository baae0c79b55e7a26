"""A task's calls and a Responses chain stay on the deployment that served them first."""

from __future__ import annotations

from tests.gateway.harness import running_fleet
from tests.routing.helpers import chat, client
from tokenomy.routing.sticky import Sticky

WEIGHTED = [
    {
        "name": "m",
        "strategy": "weighted",
        "deployments": [
            {"provider": "cloud", "model": "gpt-4o"},
            {"provider": "cloud2", "model": "gpt-4o"},
        ],
    }
]


async def test_calls_of_one_task_stick_to_its_first_deployment(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, WEIGHTED) as f:
        for task in ("t1", "t2", "t3", "t4"):
            served = {
                (await chat(f, "m", headers={"X-Tokenomy-Task": task}))[2]["x-tokenomy-deployment"]
                for _ in range(6)
            }
            assert len(served) == 1, (task, served)
        # Without a task the weighted strategy spreads (24 draws at 1:1 use both).
        untasked = {(await chat(f, "m"))[2]["x-tokenomy-deployment"] for _ in range(24)}
        assert untasked == {"cloud/gpt-4o", "cloud2/gpt-4o"}


async def test_a_task_leaves_its_deployment_when_that_one_is_failing(sqlite_url: str) -> None:
    models = [{**WEIGHTED[0], "strategy": "priority"}]
    async with running_fleet(sqlite_url, models) as f:
        h = {"X-Tokenomy-Task": "t"}
        assert (await chat(f, "m", headers=h))[2]["x-tokenomy-deployment"] == "cloud/gpt-4o"
        f.fakes["cloud"].scenario = ["error-503"]
        status, _, headers = await chat(f, "m", headers=h)
        assert status == 200 and headers["x-tokenomy-deployment"] == "cloud2/gpt-4o"


async def test_previous_response_id_goes_to_the_deployment_that_made_the_response(
    sqlite_url: str,
) -> None:
    async with running_fleet(sqlite_url, WEIGHTED) as f, client(f) as c:
        for _ in range(4):
            first = await c.responses.with_raw_response.create(model="m", input="Hello there")
            where = first.headers["x-tokenomy-deployment"]
            rid = first.parse().id
            for _ in range(4):
                nxt = await c.responses.with_raw_response.create(
                    model="m", input="And then?", previous_response_id=rid
                )
                assert nxt.headers["x-tokenomy-deployment"] == where
                rid = nxt.parse().id


async def test_streamed_responses_are_remembered_too(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, WEIGHTED) as f, client(f) as c:
        for _ in range(4):
            raw = await c.responses.with_raw_response.create(model="m", input="Hi", stream=True)
            where = raw.headers["x-tokenomy-deployment"]
            rid = ""
            async for event in raw.parse():
                if event.type == "response.completed":
                    rid = event.response.id
            assert rid
            nxt = await c.responses.with_raw_response.create(
                model="m", input="More", previous_response_id=rid
            )
            assert nxt.headers["x-tokenomy-deployment"] == where


def test_sticky_map_is_a_bounded_lru() -> None:
    s = Sticky(2)
    s.put(("task", "a"), "x")
    s.put(("task", "b"), "y")
    assert s.get(("task", "a")) == "x"  # a is now the most recent
    s.put(("task", "c"), "z")
    assert s.get(("task", "b")) is None and s.get(("task", "a")) == "x" and len(s) == 2
    off = Sticky(0)
    off.put(("task", "a"), "x")
    assert off.get(("task", "a")) is None
