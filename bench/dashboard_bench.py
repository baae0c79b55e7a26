"""Dashboard API latency on a ledger of 1M events (target: p95 ≤ 300 ms), and what
keeping the rollups costs the ledger's insert path.

Builds a SQLite ledger of ``--events`` events over 30 days (6 teams in 2 orgs, 12 models,
~40 agents, tasks of 20-80 calls) with the store's own bulk insert and rolls it up, starts
the gateway app on a loopback port, and calls each dashboard API endpoint ``--rounds``
times over HTTP with an admin key, as a global and as a team admin. ``--postgres`` also
measures the insert cost of the rollup's pending-id trigger on a throwaway PostgreSQL.
Prints a Markdown table; ``--write`` appends it to bench/RESULTS.md.

Usage: python bench/dashboard_bench.py [--events 1000000] [--rounds 30] [--postgres] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokenomy.admin import create_admin_key
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.config import parse_config
from tokenomy.database import open_database
from tokenomy.events import UsageEvent
from tokenomy.gateway.app import build_app
from tokenomy.ledger import rollups
from tokenomy.ledger.schema import EVENT_COLUMNS, event_to_row
from tokenomy.ledger.store import Store

DAY_MS = 86_400_000
FIRST: dict[str, float] = {}  # path → ms of the first (warm-up) call
TEAMS = [("acme", t) for t in ("research", "sales", "support", "platform")] + [
    ("globex", t) for t in ("research", "ops")
]
MODELS = [f"model-{i}" for i in range(10)] + ["local-llama", "local-qwen"]


def rows(n: int, now_ms: int, seed: int = 1) -> list[tuple[Any, ...]]:
    """``n`` event rows over the 30 days before ``now_ms``, as agents make them.

    Calls come in tasks: a task is one agent of one team (each team has its own agents)
    making ~50 calls over ~30 minutes, mostly with the agent's own model. This shape, not
    the number of events, decides the size of the rollups (see RESULTS.md).
    """
    rnd = random.Random(seed)
    template = event_to_row(
        UsageEvent(
            id="x",
            ts_ms=0,
            api_format="openai",
            endpoint="chat.completions",
            model="m",
            status=200,
        ),
        None,
    )
    cols = {name: i for i, name in enumerate(EVENT_COLUMNS)}
    out: list[tuple[Any, ...]] = []
    start = now_ms - 30 * DAY_MS
    while len(out) < n:
        org, team = TEAMS[rnd.randrange(len(TEAMS))]
        agent_no = rnd.randrange(40 // len(TEAMS) + 1)
        agent = f"agent-{team}-{agent_no}"
        own_model = MODELS[(hash(agent) + agent_no) % len(MODELS)]
        task = f"task-{seed}-{len(out)}"
        t0 = start + rnd.randrange(30 * DAY_MS - 1_800_000)
        for _ in range(min(rnd.randint(20, 80), n - len(out))):
            model = own_model if rnd.random() < 0.9 else MODELS[rnd.randrange(len(MODELS))]
            inp, outp = rnd.randint(100, 20_000), rnd.randint(10, 3_000)
            r = list(template)
            r[cols["id"]] = f"b{seed}-{len(out):08d}"
            r[cols["ts_ms"]] = t0 + rnd.randrange(1_800_000)
            r[cols["org"]] = org
            r[cols["team"]] = team
            r[cols["key_id"]] = f"key-{team}-{agent_no % 3}"
            r[cols["agent"]] = agent
            r[cols["task"]] = task
            r[cols["model"]] = model
            r[cols["location"]] = "local" if model.startswith("local") else "cloud"
            r[cols["status"]] = 200 if rnd.random() < 0.97 else rnd.choice((429, 500, 502))
            r[cols["input_tokens"]] = inp
            r[cols["cached_tokens"]] = inp // 3
            r[cols["output_tokens"]] = outp
            r[cols["reasoning_tokens"]] = outp // 4
            r[cols["cost_nanos"]] = (inp * 2_500 + outp * 10_000) // 10
            r[cols["latency_ms"]] = float(rnd.choice((40, 120, 400, 900, 2500, 8000)))
            out.append(tuple(r))
    return out


def build(store: Store, n: int, now_ms: int) -> float:
    """Insert ``n`` rows in batches and roll them up; returns the seconds it took."""
    started = time.perf_counter()
    batch = 50_000
    for lo in range(0, n, batch):
        store.insert_rows(rows(min(batch, n - lo), now_ms, seed=lo))
    rollups.refresh(store)  # SQLite: the first dashboard view would do it otherwise
    return time.perf_counter() - started


def refresh_cost(tmp: Path, n: int = 100_000) -> tuple[float, float]:
    """Seconds to insert ``n`` rows in the writer's batches, and to roll them up after."""
    now = int(time.time() * 1000)
    data = rows(n, now, seed=99)
    store = open_database(f"sqlite:///{tmp / 'refresh.db'}")
    started = time.perf_counter()
    for lo in range(0, n, 1_000):  # the batch writer's batch size
        store.insert_rows(data[lo : lo + 1_000])
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    rollups.refresh(store)
    rolled = time.perf_counter() - started
    store.close()
    return inserted, rolled


def postgres_insert_cost(n: int = 20_000) -> tuple[float, float]:
    """PostgreSQL: seconds to insert ``n`` rows in the writer's batches with the rollup's
    pending-id trigger, and without it (a throwaway server from the test suite)."""
    from tests.postgres import fresh_database, postgres_server

    data = rows(n, int(time.time() * 1000), seed=7)
    out = []
    with postgres_server() as dsn:
        for keep in (True, False):
            store = open_database(fresh_database(dsn))
            if not keep:
                with store.transaction() as cur:
                    cur.execute("DROP TRIGGER usage_events_rollup ON usage_events")
            started = time.perf_counter()
            for lo in range(0, n, 1_000):
                store.insert_rows(data[lo : lo + 1_000])
            out.append(time.perf_counter() - started)
            store.close()
    return out[0], out[1]


async def measure(url: str, secret: str, path: str, rounds: int) -> list[float]:
    times = []
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        started = time.perf_counter()
        async with s.get(url + path) as r:  # warm-up (for budgets: the one computation)
            assert r.status == 200, (path, r.status, await r.text())
            await r.read()
        FIRST[path] = (time.perf_counter() - started) * 1000
        for _ in range(rounds):
            started = time.perf_counter()
            async with s.get(url + path) as r:
                await r.read()
                assert r.status == 200
            times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def run(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="tokenomy-dash-bench-"))
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    store = open_database(db_url)
    now = int(time.time() * 1000)
    build_s = build(store, args.events, now)
    storage.set_budget(
        store,
        kind=BUDGET,
        scope="team:research",
        unit="usd",
        limit=10**13,
        period="month",
        hard=True,
    )
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM usage_rollup_hourly")
        rollup_rows = int(cur.fetchone()[0])
    _, global_key = create_admin_key(store, name="bench")
    _, team_key = create_admin_key(store, org="acme", team="research", name="bench-team")
    store.close()
    app = build_app(parse_config({"gateway": {"db": db_url}}, "bench.toml"), db_url)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    cases = [
        ("summary 24h by team", "/dashboard/api/summary?since=24h&by=team", global_key),
        ("summary 7d by model", "/dashboard/api/summary?since=7d&by=model", global_key),
        ("summary 30d by agent", "/dashboard/api/summary?since=30d&by=agent", global_key),
        ("summary 30d by location", "/dashboard/api/summary?since=30d&by=location", global_key),
        ("summary 30d, team admin", "/dashboard/api/summary?since=30d&by=model", team_key),
        ("budgets", "/dashboard/api/budgets", global_key),
        ("live", "/dashboard/api/live", global_key),
        ("request log, newest 50", "/dashboard/api/requests?since=24h", global_key),
        ("request log, status=500", "/dashboard/api/requests?since=24h&status=500", global_key),
        (
            "request log, model+key",
            "/dashboard/api/requests?since=24h&model=model-3&key=key-sales-2",
            global_key,
        ),
        (
            "request log, task (no match: whole 24 h)",
            "/dashboard/api/requests?since=24h&task=task-1-123",
            global_key,
        ),
    ]
    results = []
    try:
        for name, path, key in cases:
            t = await measure(url, key, path, args.rounds)
            results.append((name, statistics.median(t), p95(t), max(t)))
    finally:
        await runner.cleanup()
    inserted, rolled = refresh_cost(tmp)
    pg = postgres_insert_cost() if args.postgres else None
    worst = max(r[2] for r in results)
    lines = [
        "",
        "## Dashboard API on a 1M-event ledger",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        f"- ledger: SQLite, {args.events:,} events over 30 days ({len(TEAMS)} teams, "
        f"{len(MODELS)} models, ~40 agents, tasks of 20-80 calls in 30 minutes); "
        f"{rollup_rows:,} hourly rollup rows; "
        f"built in {build_s:.1f} s ({args.events / build_s:,.0f} events/s, rolling up included)",
        f"- {args.rounds} calls per endpoint over loopback HTTP after one warm-up, one client",
        "",
        "| endpoint | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|",
        *(f"| {n} | {a:.1f} | {b:.1f} | {c:.1f} |" for n, a, b, c in results),
        "",
        f"- worst p95: **{worst:.1f} ms** (target ≤ 300 ms)",
        f"- budgets: the first call computes the budgets room's rows "
        f"({FIRST.get('/dashboard/api/budgets', 0):.0f} ms: its forecast reads 28 days of "
        f"the ledger); the dashboard serves that copy for a minute and recomputes it in the "
        f"background",
        f"- rolling up (SQLite, off the writer's path): 100k events inserted in batches of "
        f"1,000 in {inserted:.2f} s; rolled up afterwards in {rolled:.2f} s "
        f"({rolled / 100_000 * 1e6:.1f} µs per event, in the background)",
        *(
            [
                f"- PostgreSQL insert cost of the rollup's pending-id trigger: 20k rows in "
                f"batches of 1,000: {pg[0]:.2f} s with it, {pg[1]:.2f} s without "
                f"({(pg[0] / pg[1] - 1) * 100:+.0f}%; run it more than once: it is noisy)"
            ]
            if pg
            else []
        ),
        f"- load average during the run: {os.getloadavg()[0]:.1f} (other work on the machine)",
        "",
        "Reproduce: `python bench/dashboard_bench.py --postgres --write`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--postgres", action="store_true", help="also measure the PostgreSQL insert cost"
    )
    args = parser.parse_args()
    text = asyncio.run(run(args))
    print(text)
    if args.write:
        with (Path(__file__).parent / "RESULTS.md").open("a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
