"""Agents with known behaviour, driven through a real gateway with the official OpenAI SDK.

Each agent keeps its own conversation (Plan → Act → Observe → Reflect), appends the tool
calls it makes and what they return (the tools are simulated here, deterministically),
sets the task headers and posts its outcome. What each profile should trigger:

=============  ==========================================
healthy        nothing
polling        nothing (the same call, with progress in every result)
looper         repeat_action
ping_pong      ping_pong
error_repeat   repeat_error
bloater        context_bloat
retry_storm    retry_storm
=============  ==========================================
"""

from __future__ import annotations

from typing import Any

import aiohttp
from openai import AsyncOpenAI

MODEL = "gpt-4o-mini"
EXPECTED = {
    "healthy": set(),
    "polling": set(),
    "looper": {"repeat_action"},
    "ping_pong": {"ping_pong"},
    "error_repeat": {"repeat_error"},
    "bloater": {"context_bloat"},
    "retry_storm": {"retry_storm"},
}


class Agent:
    def __init__(self, client: AsyncOpenAI, name: str, task: str, **headers: str) -> None:
        self.client, self.name, self.task = client, name, task
        self.headers = {"X-Tokenomy-Task": task, "X-Tokenomy-Agent": name, **headers}
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": f"You are the {name} agent."},
            {"role": "user", "content": f"Task {task}: do the work."},
        ]
        self.calls = 0

    async def step(self, kind: str, remember: bool = True) -> None:
        self.calls += 1
        resp = await self.client.chat.completions.create(
            model=MODEL,
            messages=self.messages,  # type: ignore[arg-type]
            max_tokens=16,
            extra_headers={**self.headers, "X-Tokenomy-Step": kind},
        )
        if remember:
            self.messages.append({"role": "assistant", "content": resp.choices[0].message.content})

    def tool(self, name: str, args: str, result: str) -> None:
        """The model called ``name(args)`` and the tool answered ``result``."""
        cid = f"call_{len(self.messages)}"
        self.messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                ],
            }
        )
        self.messages.append({"role": "tool", "tool_call_id": cid, "content": result})

    async def act(self, name: str, args: str, result: str) -> None:
        self.tool(name, args, result)
        await self.step("observe")


async def healthy(a: Agent) -> None:
    await a.step("plan")
    await a.act("search", '{"q": "flights to Lisbon"}', "3 flights found")
    await a.act("book", '{"flight": "TP123"}', "booked: PNR X7Y")
    await a.step("reflect")


async def polling(a: Agent) -> None:
    await a.step("plan")
    await a.act("start_job", '{"job": "render"}', "job 42 started")
    for pct in range(10, 100, 10):  # the same call; every result says how far it got
        await a.act("job_status", '{"job": 42}', f"running: {pct}% done")
    await a.act("job_status", '{"job": 42}', "done")
    await a.step("reflect")


async def looper(a: Agent) -> None:
    await a.step("plan")
    for _ in range(4):
        await a.act("search", '{"q": "cheapest hotel"}', "no results")


async def ping_pong(a: Agent) -> None:
    await a.step("plan")
    for _ in range(3):
        await a.act("open_file", '{"path": "a.py"}', "def a(): pass")
        await a.act("open_file", '{"path": "b.py"}', "def b(): pass")


async def error_repeat(a: Agent) -> None:
    await a.step("plan")
    for i in range(3):  # different arguments, the same error each time
        await a.act("read", f'{{"path": "/data/{i}.csv"}}', "Error: permission denied")


async def bloater(a: Agent) -> None:
    await a.step("plan")
    for i in range(7):  # a whole file appended to the context at every step
        page = " ".join(f"line{i}_{w}" for w in range(700))
        await a.act("read_page", f'{{"page": {i}}}', page)


async def retry_storm(a: Agent) -> None:
    await a.step("plan")
    a.messages.append({"role": "user", "content": "try again"})
    for _ in range(4):  # the identical request, again and again
        await a.step("act", remember=False)


PROFILES = {
    "healthy": healthy,
    "polling": polling,
    "looper": looper,
    "ping_pong": ping_pong,
    "error_repeat": error_repeat,
    "bloater": bloater,
    "retry_storm": retry_storm,
}


async def post_outcome(
    base: str, key: str, task: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{base}/v1/tasks/{task}/outcome",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as r,
    ):
        return r.status, await r.json()
