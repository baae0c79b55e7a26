"""A fleet with known behaviour through a real gateway: findings, tasks, value, alerts."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
from openai import AsyncOpenAI
from typer.testing import CliRunner

from tests.gateway.harness import running_gateway
from tests.tasks.conftest import Webhook
from tests.tasks.fleet import EXPECTED, PROFILES, Agent, post_outcome
from tokenomy.cli import app as cli
from tokenomy.ledger.reports import usage_report
from tokenomy.tasks.reports import shredder_report, tasks_report, value_report

OUTCOMES = {
    "healthy": {"status": "succeeded", "value_usd": 2.5},
    "polling": {"status": "succeeded", "value_usd": 1},
    "looper": {"status": "failed"},
    "ping_pong": {"status": "failed"},
    "error_repeat": {"status": "abandoned"},
    "bloater": {"status": "succeeded", "value_usd": 0.5},
    # retry_storm posts no outcome
}


async def _settled(h, count: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    for _ in range(500):  # findings are stored in the background
        h.flush()
        rows = shredder_report(h.store)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.01)
    return shredder_report(h.store)


async def test_fleet_findings_tasks_value_and_alerts(
    sqlite_url: str, upstream_keys: None, webhook: Webhook
) -> None:
    async with running_gateway(sqlite_url, sections={"alerts": {"webhook_url": webhook.url}}) as h:
        client = AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0)
        agents = {}
        for name, run in PROFILES.items():
            agent = agents[name] = Agent(client, name, f"task-{name}")
            await run(agent)
            if name in OUTCOMES:
                status, answer = await post_outcome(h.url, h.key, agent.task, OUTCOMES[name])
                assert status == 200, answer
        await client.close()
        expected = sum(len(k) for k in EXPECTED.values())
        found = await _settled(h, expected)
        by_task: dict[str, set[str]] = {}
        for f in found:
            by_task.setdefault(str(f["task"]), set()).add(str(f["kind"]))
        assert by_task == {f"task-{n}": k for n, k in EXPECTED.items() if k}
        for f in found:
            assert f["agent"] == str(f["task"]).removeprefix("task-")
            assert int(str(f["tokens"])) > 0
        bloat = next(f for f in found if f["kind"] == "context_bloat")
        assert "prompt caching would save $" in str(bloat["evidence"])
        assert "minimum cacheable length" in str(bloat["evidence"])
        assert Decimal(str(bloat["cost_usd"])) > 0

        # One webhook alert per task and kind.
        for _ in range(500):
            if len(webhook.received) >= expected:
                break
            await asyncio.sleep(0.01)
        alerted = sorted((a["task"], a["kind"]) for a in webhook.received)
        assert alerted == sorted((f["task"], f["kind"]) for f in found)
        assert all(a["type"] == "task.shredder" for a in webhook.received)

        # More of the same loop does not alert again.
        looper = agents["looper"]
        client = AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0)
        looper.client = client
        for _ in range(3):
            await looper.act("search", '{"q": "cheapest hotel"}', "no results")
        await client.close()
        h.flush()
        await asyncio.sleep(0.05)
        assert len(webhook.received) == expected

        rows = {r["task"]: r for r in tasks_report(h.store)}
        assert set(rows) == {f"task-{n}" for n in PROFILES}
        for name, agent in agents.items():
            row = rows[f"task-{name}"]
            assert row["calls"] == agent.calls
            assert row["agent"] == name and row["team"] == "research"
            assert row["outcome"] == OUTCOMES.get(name, {}).get("status", "")
        assert rows["task-polling"]["observe_tokens"] > 0
        assert rows["task-healthy"]["value_usd"] == Decimal("2.5")

        [total] = value_report(h.store)
        assert total["tasks"] == 7
        assert total["with_outcome"] == 6 and total["tasks_without_outcome"] == 1
        assert total["succeeded"] == 3 and total["failed"] == 2
        assert total["success_rate"] == Decimal("0.5")
        assert total["value_usd"] == Decimal("4")
        usage = usage_report(h.store, by=["task"])
        cost = sum((r["cost_usd"] for r in usage if r["task"]), Decimal(0))
        tokens = sum(r["input_tokens"] + r["output_tokens"] for r in usage if r["task"])
        assert total["cost_usd"] == cost > 0
        assert total["tokens"] == tokens
        assert total["cost_per_success_usd"] == (cost / 3).quantize(Decimal("1e-9"))

    # The CLI reads the same numbers (totals equal `tokenomy usage --by task`).
    runner = CliRunner()
    out = runner.invoke(cli, ["value", "--format", "json", "--db", sqlite_url])
    assert out.exit_code == 0, out.output
    [row] = orjson.loads(out.stdout)
    assert {"tasks", "succeeded", "success_rate", "cost_usd", "cost_per_success_usd"} <= set(row)
    assert {"value_usd", "value_per_usd", "tasks_without_outcome"} <= set(row)
    by_task = runner.invoke(cli, ["usage", "--by", "task", "--format", "json", "--db", sqlite_url])
    usage_rows = orjson.loads(by_task.stdout)
    assert Decimal(str(row["cost_usd"])) == sum(
        (Decimal(str(r["cost_usd"])) for r in usage_rows if r["task"]), Decimal(0)
    )
    by_agent = orjson.loads(
        runner.invoke(
            cli, ["value", "--by", "agent", "--format", "json", "--db", sqlite_url]
        ).stdout
    )
    assert {r["agent"] for r in by_agent} == set(PROFILES)
    shred = runner.invoke(cli, ["shredder", "--format", "json", "--db", sqlite_url])
    assert {(r["task"], r["kind"]) for r in orjson.loads(shred.stdout)} == set(alerted)
    listing = runner.invoke(
        cli, ["tasks", "--agent", "polling", "--format", "csv", "--db", sqlite_url]
    )
    assert listing.exit_code == 0 and "task-polling" in listing.stdout
