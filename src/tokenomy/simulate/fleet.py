"""A fleet of simulated agents driving a gateway for a while, and what it cost.

``run`` starts ``agents`` agents; each plays tasks of its profile back to back until the
duration is up (a task still running then stops where it is, without an outcome). At
most ``concurrency`` calls are in flight at once, over one kept-alive connection pool.
The summary is computed from what the gateway answered: the usage in each response and
the exact cost in its ``x-tokenomy-cost-usd`` header, so it equals the ledger.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from tokenomy.simulate.agent import Client, Stats, Task
from tokenomy.simulate.profiles import PROFILES, SHREDDER_KINDS

ProgressFn = Callable[[Stats, float], None]


class FleetError(Exception):
    """The fleet cannot start: the gateway is unreachable or refuses the key."""


@dataclass(frozen=True, slots=True)
class FleetOptions:
    gateway: str
    key: str
    agents: int = 10
    profile: str = "moderate"
    duration_s: float = 60.0
    concurrency: int | None = None  # calls in flight at most; default: one per agent
    shredder: bool = False
    model: str = "simulated"
    seed: int = 0
    outcomes: bool = True  # post each finished task's outcome


def shredder_kind(options: FleetOptions, agent: int) -> str | None:
    """With ``--shredder``, every other agent misbehaves: loop, bloat, storm in turn."""
    if not options.shredder or agent % 2 == 0:
        return None
    return SHREDDER_KINDS[(agent // 2) % len(SHREDDER_KINDS)]


async def run(
    options: FleetOptions, progress: ProgressFn | None = None
) -> tuple[Stats, float, str]:
    """Drive the gateway; returns the stats, the elapsed seconds and the run id."""
    profile = PROFILES[options.profile]
    run_id = os.urandom(3).hex()
    stats = Stats()
    limit = options.concurrency or options.agents
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    started, cpu0 = time.monotonic(), time.process_time()
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
    ) as session:
        await _preflight(session, options)
        client = Client(
            session,
            options.gateway.rstrip("/"),
            options.key,
            asyncio.Semaphore(limit),
            stats,
            started + options.duration_s,
            options.outcomes,
        )

        async def agent(i: int) -> None:
            rng = random.Random(options.seed * 1_000_003 + i)
            kind = shredder_kind(options, i)
            name = f"sim-{options.profile}-{i:02d}"
            k = 0
            while time.monotonic() < client.deadline:
                task_id = f"sim-{run_id}-{i:02d}-{k:04d}"
                await Task(
                    client, profile, name, task_id, rng, shredder=kind, model=options.model
                ).run()
                k += 1

        async def report() -> None:
            while True:
                await asyncio.sleep(0.25)
                if progress is not None:
                    progress(stats, time.monotonic() - started)

        ticker = asyncio.create_task(report())
        try:
            await asyncio.gather(*(agent(i) for i in range(options.agents)))
        finally:
            ticker.cancel()
    elapsed = time.monotonic() - started
    stats.client_cpu_s = time.process_time() - cpu0
    if progress is not None:
        progress(stats, elapsed)
    return stats, elapsed, run_id


async def _preflight(session: aiohttp.ClientSession, options: FleetOptions) -> None:
    """Check that the gateway answers and takes the key, before any agent starts."""
    url = options.gateway.rstrip("/") + "/v1/models"
    try:
        async with session.get(url, headers={"Authorization": f"Bearer {options.key}"}) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FleetError(f"cannot reach the gateway at {options.gateway}: {exc}") from exc
    if status != 200:
        text = raw[:300].decode(errors="replace")
        raise FleetError(f"{url} answered HTTP {status}: {text}")


def _ratio(num: Decimal, den: Decimal | int, places: str = "0.000001") -> Decimal | None:
    return (Decimal(num) / Decimal(den)).quantize(Decimal(places)) if den else None


def summary(
    options: FleetOptions,
    stats: Stats,
    elapsed_s: float,
    run_id: str,
    findings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run in numbers (exact decimals for money)."""
    finished = sum(stats.outcomes.values())
    succeeded = stats.outcomes.get("succeeded", 0)
    lat = sorted(stats.latencies_ms)
    requests = stats.calls + stats.outcomes_posted + stats.outcomes_refused
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)) if lat else None
    return {
        "run_id": run_id,
        "profile": options.profile,
        "agents": options.agents,
        "concurrency": options.concurrency or options.agents,
        "shredder": options.shredder,
        "duration_s": round(elapsed_s, 3),
        "calls": stats.calls,
        "calls_per_s": round(stats.calls / elapsed_s, 1) if elapsed_s else 0.0,
        # Every request the gateway answered: the calls and the outcome posts.
        "requests_per_s": round(requests / elapsed_s, 1) if elapsed_s else 0.0,
        "failed_calls": stats.failed_calls,
        "retries": stats.retries,
        "transport_errors": stats.transport_errors,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "latency_p50_ms": pct(0.5) if pct else None,
        "latency_p95_ms": pct(0.95) if pct else None,
        "mean_latency_ms": round(statistics.fmean(lat), 2) if lat else None,
        "input_tokens": stats.input_tokens,
        "output_tokens": stats.output_tokens,
        "tokens": stats.input_tokens + stats.output_tokens,
        "cost_usd": stats.cost,
        "unpriced_calls": stats.unpriced_calls,
        "tasks": stats.tasks,
        "finished_tasks": finished,
        "succeeded": succeeded,
        "failed": stats.outcomes.get("failed", 0),
        "abandoned": stats.outcomes.get("abandoned", 0),
        "unfinished": stats.unfinished,
        "success_rate": _ratio(Decimal(succeeded), finished, "0.0001"),
        "cost_per_success_usd": _ratio(stats.cost, succeeded, "0.000000001"),
        "tokens_per_success": (stats.input_tokens + stats.output_tokens) // succeeded
        if succeeded
        else None,
        "value_usd": stats.value,
        "value_per_usd": _ratio(stats.value, stats.cost, "0.0001") if stats.cost else None,
        "outcomes_posted": stats.outcomes_posted,
        "outcomes_refused": stats.outcomes_refused,
        "client_cpu_s": round(stats.client_cpu_s, 3),
        "shredders": stats.planted,
        "findings": findings,
    }


def read_findings(db_url: str, run_id: str, since_ms: int) -> list[dict[str, Any]]:
    """The gateway's shredder findings on this run's tasks, from its database."""
    from tokenomy.database import open_database
    from tokenomy.money import nanos_to_usd
    from tokenomy.tasks.storage import findings

    store = open_database(db_url, migrate=False)
    try:
        found = findings(store, since_ms)
    finally:
        store.close()
    prefix = f"sim-{run_id}-"
    return [
        {
            "task": f.task,
            "agent": f.agent,
            "kind": f.kind,
            "evidence": f.evidence,
            "tokens": f.tokens,
            "cost_usd": nanos_to_usd(f.cost_nanos),
        }
        for f in found
        if f.task.startswith(prefix)
    ]
