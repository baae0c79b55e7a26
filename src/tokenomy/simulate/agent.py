"""One simulated agent task: Plan → Act → Observe → Reflect over the gateway's chat API.

The agent talks OpenAI chat completions (tool calls in OpenAI's wire shapes), keeps its
whole conversation and appends to it (so the context grows step after step), runs the
tools the model calls itself (their observations are made-up text of a set size), retries
429 and 5xx answers with exponential backoff as the SDKs do, and finally posts its outcome
with a business value to ``POST /v1/tasks/{task_id}/outcome``. Every call carries the
task headers: ``X-Tokenomy-Task``, ``X-Tokenomy-Agent``, ``X-Tokenomy-Step`` and, for a
sub-agent, ``X-Tokenomy-Parent-Task``.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from tokenomy import exact_json
from tokenomy.simulate.profiles import (
    LOOP_ITERATIONS,
    POLL_TOOLS,
    STORM_BURST,
    SUB_AGENT,
    SUB_AGENT_NAMES,
    TOOLS,
    Profile,
)
from tokenomy.simulated.answers import WORDS

COST_HEADER = "x-tokenomy-cost-usd"
RETRIED = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_ATTEMPTS = 3
BACKOFF_S = 0.25
LATENCY_SAMPLE = 100_000


@dataclass(slots=True)
class Stats:
    """What the fleet did, as seen from the client side (summed over every agent)."""

    calls: int = 0  # LLM calls answered by the gateway (each one is a ledger event)
    failed_calls: int = 0  # of which answered with an error status
    retries: int = 0
    transport_errors: int = 0  # no HTTP answer at all (not on the ledger)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced_calls: int = 0  # answered 200 without a cost header
    tasks: int = 0  # tasks started (sub-tasks included)
    outcomes: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0  # cut by the end of the simulation: no outcome posted
    value: Decimal = Decimal(0)
    outcomes_posted: int = 0
    outcomes_refused: int = 0  # the gateway answered the outcome post with an error
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # a uniform sample of them
    latency_count: int = 0
    planted: list[dict[str, str]] = field(default_factory=list)  # shredders: agent, task, kind
    task_ids: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0  # CPU time of the simulating process during the run

    def latency(self, ms: float) -> None:
        """Keep a uniform sample of at most LATENCY_SAMPLE latencies (reservoir sampling)."""
        self.latency_count += 1
        if len(self.latencies_ms) < LATENCY_SAMPLE:
            self.latencies_ms.append(ms)
            return
        slot = random.randrange(self.latency_count)
        if slot < LATENCY_SAMPLE:
            self.latencies_ms[slot] = ms


class Cut(Exception):
    """The simulation's time is up: the task stops where it is."""


class CallFailed(Exception):
    """A call failed for good (after its retries)."""


@dataclass(slots=True)
class Client:
    """The gateway as the agents see it: one aiohttp session, a bound on calls in flight."""

    session: aiohttp.ClientSession
    url: str
    key: str
    limit: asyncio.Semaphore
    stats: Stats
    deadline: float  # time.monotonic() after which no new call starts
    post_outcomes: bool = True  # False: pure load on the model endpoints

    async def chat(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion, retried on 429/5xx; raises Cut or CallFailed."""
        data = orjson.dumps(body)
        for attempt in range(MAX_ATTEMPTS):
            if time.monotonic() >= self.deadline:
                raise Cut
            status, payload = await self._post(headers, data)
            if status == 200 and isinstance(payload, dict):
                return payload
            if (status not in RETRIED and status != 0) or attempt == MAX_ATTEMPTS - 1:
                break
            self.stats.retries += 1
            await asyncio.sleep(BACKOFF_S * 2**attempt)
        raise CallFailed

    async def _post(self, headers: dict[str, str], data: bytes) -> tuple[int, Any]:
        stats = self.stats
        async with self.limit:
            t0 = time.perf_counter()
            try:
                async with self.session.post(
                    self.url + "/v1/chat/completions", data=data, headers=headers
                ) as resp:
                    raw = await resp.read()
                    status, cost = resp.status, resp.headers.get(COST_HEADER)
            except (aiohttp.ClientError, TimeoutError):
                stats.transport_errors += 1
                return 0, None
            stats.latency((time.perf_counter() - t0) * 1000)
        stats.calls += 1
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if cost is not None:
            stats.cost += Decimal(cost)
        if status != 200:
            stats.failed_calls += 1
            return status, None
        payload = orjson.loads(raw)
        usage = payload.get("usage") or {}
        stats.input_tokens += int(usage.get("prompt_tokens") or 0)
        stats.output_tokens += int(usage.get("completion_tokens") or 0)
        if cost is None:
            stats.unpriced_calls += 1
        return status, payload

    async def outcome(self, task: str, body: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        try:
            async with (
                self.limit,
                self.session.post(
                    f"{self.url}/v1/tasks/{task}/outcome",
                    data=exact_json.dumps(body),
                    headers=headers,
                ) as resp,
            ):
                await resp.read()
                ok = resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.stats.outcomes_posted += 1
        else:
            self.stats.outcomes_refused += 1


def text(tokens: int, seed: int, prefix: str = "") -> str:
    """Made-up text of exactly ``tokens`` o200k tokens (after ``prefix``), fixed by ``seed``."""
    k = len(WORDS)
    return prefix + "".join(WORDS[(seed + i * 13) % k] for i in range(tokens))


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


@dataclass(slots=True)
class Task:
    """One task of one agent; ``run`` plays it to its end and posts the outcome."""

    client: Client
    profile: Profile
    agent: str
    task_id: str
    rng: random.Random
    shredder: str | None = None
    parent: str | None = None
    model: str = "simulated"
    system: str = ""
    calls: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    results: list[str] = field(default_factory=list)

    def headers(self, step: str) -> dict[str, str]:
        h = {
            "Authorization": f"Bearer {self.client.key}",
            "Content-Type": "application/json",
            "X-Tokenomy-Task": self.task_id,
            "X-Tokenomy-Agent": self.agent,
            "X-Tokenomy-Step": step,
        }
        if self.parent:
            h["X-Tokenomy-Parent-Task"] = self.parent
        return h

    async def call(
        self, step: str, tools: list[dict[str, Any]] | None = None, choice: Any = None
    ) -> dict[str, Any]:
        if self.shredder == "bloat" and self.results:
            # Rewrites the top of its prompt with everything seen so far, every call: all
            # of it is re-sent, and no prompt cache can ever hit.
            self.calls += 1
            scratchpad = f"Scratchpad at call {self.calls}:" + "".join(self.results)
            self.messages[0] = {"role": "system", "content": self.system + scratchpad}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "max_tokens": self.profile.max_tokens,
        }
        if tools:
            body["tools"] = tools
            if choice is not None:
                body["tool_choice"] = choice
        answer = await self.client.chat(self.headers(step), body)
        if self.shredder == "storm" and step == "act":
            for _ in range(STORM_BURST - 1):  # the same request again, no backoff
                answer = await self.client.chat(self.headers(step), body)
        message: dict[str, Any] = answer["choices"][0]["message"]
        kept = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            kept["tool_calls"] = message["tool_calls"]
        self.messages.append(kept)
        return message

    async def run(self) -> None:
        stats = self.client.stats
        stats.tasks += 1
        stats.task_ids.append(self.task_id)
        if self.shredder:
            stats.planted.append({"agent": self.agent, "task": self.task_id, "kind": self.shredder})
        try:
            status = await self._play()
        except Cut:
            stats.unfinished += 1
            return
        except CallFailed:
            status = "failed"
        value = self.profile.value_usd if status == "succeeded" else Decimal(0)
        stats.outcomes[status] = stats.outcomes.get(status, 0) + 1
        stats.value += value
        body: dict[str, Any] = {
            "status": status,
            "metrics": {"steps": len(self.messages)},
            "note": f"tokenomy simulate: {self.profile.name}"
            + (f", shredder {self.shredder}" if self.shredder else ""),
            "outcome_id": self.task_id + ":outcome",
        }
        if status == "succeeded":
            body["value_usd"] = value
        if self.client.post_outcomes:
            await self.client.outcome(self.task_id, body)

    async def _play(self) -> str:
        p = self.profile
        seed = _seed(self.task_id)
        goal = text(40, seed, f"Task {self.task_id}: ")
        self.system = text(p.system_tokens, seed + 1, "You are an agent.")
        self.messages = [
            {"role": "system", "content": self.system},
            {"role": "user", "content": goal},
        ]
        if not p.tools:  # a chat: a few turns of conversation
            for turn in range(self.rng.randint(1, p.iterations)):
                await self.call("other")
                self.messages.append({"role": "user", "content": text(30, seed + turn)})
            return self._verdict()
        if p.poll_wait_s:
            return await self._poll(seed)
        await self.call("plan")
        iterations = LOOP_ITERATIONS if self.shredder == "loop" else p.iterations
        for i in range(iterations):
            looping = self.shredder == "loop" and i >= 2
            message = await self.call("act", TOOLS, "required")
            self._observe_tool(message, seed + 100 + i, same=looping)
            if looping:
                continue  # never reads the result: calls again
            await self.call("observe", TOOLS)
            if p.reflect_every and (i + 1) % p.reflect_every == 0:
                await self.call("reflect")
            if p.sub_agents and i == iterations // 2 and not self.shredder:
                await self._sub_agents(seed)
        if self.shredder == "loop":
            return "abandoned"
        return self._verdict()

    def _observe_tool(self, message: dict[str, Any], seed: int, *, same: bool = False) -> None:
        """Run the tool the model called: its observation is appended as the tool's result."""
        for call in message.get("tool_calls") or []:
            name = call["function"]["name"]
            if same:
                result = "No results found."  # the same dead end, whatever was called
            else:
                result = text(self.profile.result_tokens, seed, f"[{name}]")
            self.results.append(result)
            self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})

    async def _poll(self, seed: int) -> str:
        job = f"job-{seed % 100000:05d}"
        await self.call("act", POLL_TOOLS, {"type": "function", "function": {"name": "submit_job"}})
        self._result(f"{job} started")
        polls = self.profile.iterations
        for i in range(polls):
            await asyncio.sleep(self.profile.poll_wait_s)
            check = {"type": "function", "function": {"name": "check_status"}}
            await self.call("act", POLL_TOOLS, check)
            done = i == polls - 1
            self._result(f"{job}: done" if done else f"{job}: running, {(i + 1) * 100 // polls}%")
        await self.call("observe", POLL_TOOLS, "none")
        return self._verdict()

    def _result(self, content: str) -> None:
        last = self.messages[-1]
        for call in last.get("tool_calls") or []:
            self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

    async def _sub_agents(self, seed: int) -> None:
        subs = [
            Task(
                self.client,
                SUB_AGENT,
                f"{self.agent}/{name}",
                f"{self.task_id}.{name}",
                random.Random(seed + j),
                parent=self.task_id,
                model=self.model,
            )
            for j, name in enumerate(SUB_AGENT_NAMES[: self.profile.sub_agents])
        ]
        await asyncio.gather(*(s.run() for s in subs))
        summary = "Sub-agents reported:" + "".join(s.results[-1] for s in subs if s.results)
        self.messages.append({"role": "user", "content": summary})

    def _verdict(self) -> str:
        return "succeeded" if self.rng.random() < self.profile.success_rate else "failed"
