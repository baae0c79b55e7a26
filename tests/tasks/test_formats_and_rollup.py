"""Anthropic streams through the detector, sub-task roll-up, and detection switched off."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from tests.gateway.harness import running_gateway
from tests.tasks.fleet import Agent, looper, post_outcome
from tokenomy.tasks.reports import shredder_report, tasks_report, value_report


async def test_a_looping_anthropic_agent_over_streams_is_caught(
    sqlite_url: str, upstream_keys: None
) -> None:
    async with running_gateway(sqlite_url) as h:
        client = AsyncAnthropic(base_url=h.url, api_key=h.key, max_retries=0)
        messages: list[dict[str, Any]] = [{"role": "user", "content": "find a hotel"}]
        for i in range(4):
            async with client.messages.stream(
                model="claude-sonnet",
                max_tokens=16,
                messages=messages,  # type: ignore[arg-type]
                extra_headers={"X-Tokenomy-Task": "ant-loop", "X-Tokenomy-Agent": "claude"},
            ) as stream:
                await stream.get_final_message()
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": f"tu{i}", "name": "search", "input": {"q": "x"}}
                    ],
                }
            )
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": f"tu{i}", "content": "no hotels"}
                    ],
                }
            )
        await client.close()
        for _ in range(500):
            h.flush()
            found = shredder_report(h.store)
            if found:
                break
            await asyncio.sleep(0.01)
        assert [(f["task"], f["kind"], f["agent"]) for f in found] == [
            ("ant-loop", "repeat_action", "claude")
        ]


async def test_sub_tasks_roll_up_into_their_parent(sqlite_url: str, upstream_keys: None) -> None:
    async with running_gateway(sqlite_url) as h:
        client = AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0)
        parent = Agent(client, "lead", "trip")
        child = Agent(client, "flights", "trip.flights", **{"X-Tokenomy-Parent-Task": "trip"})
        grandchild = Agent(
            client, "seats", "trip.seats", **{"X-Tokenomy-Parent-Task": "trip.flights"}
        )
        await parent.step("plan")
        for _ in range(2):
            await child.step("act")
        await grandchild.step("act")
        await parent.step("reflect")
        await client.close()
        assert (await post_outcome(h.url, h.key, "trip", {"status": "succeeded", "value_usd": 5}))[
            0
        ] == 200
        assert (
            await post_outcome(h.url, h.key, "trip.flights", {"status": "failed", "value_usd": 1})
        )[0] == 200
        h.flush()
        [row] = tasks_report(h.store)
        assert (row["task"], row["agent"], row["calls"], row["subtasks"]) == ("trip", "lead", 5, 2)
        assert row["outcome"] == "succeeded" and row["value_usd"] == Decimal(6)
        assert row["plan_tokens"] > 0 and row["act_tokens"] > 0 and row["reflect_tokens"] > 0
        [total] = value_report(h.store)
        assert (total["tasks"], total["succeeded"], total["tasks_without_outcome"]) == (1, 1, 0)
        assert total["cost_per_success_usd"] == total["cost_usd"]
        assert [r["agent"] for r in value_report(h.store, by="agent")] == ["lead"]
        assert tasks_report(h.store, agent="flights") == []


async def test_detection_can_be_switched_off(sqlite_url: str, upstream_keys: None) -> None:
    async with running_gateway(sqlite_url, sections={"tasks": {"detect": False}}) as h:
        client = AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0)
        await looper(Agent(client, "looper", "quiet"))
        await client.close()
        assert h.gateway.tasks is not None and not h.gateway.tasks.detector.tasks
