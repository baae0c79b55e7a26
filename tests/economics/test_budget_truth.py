"""One budget truth: period spend from the ledger, one run-out model for both commands,
and the gateways' counters agreeing with the ledger after random traffic."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from typer.testing import CliRunner

from tests.economics.series import flat_weekend_dips, import_rows, rows
from tests.gateway.harness import running_gateway
from tests.gateway.test_budgets_e2e import budget_config
from tokenomy import clock
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.budgets.report import budget_rows
from tokenomy.cli import app
from tokenomy.database import open_database

# Thursday noon: the week began on Monday 2026-10-26.
NOW = datetime(2026, 10, 29, 12, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
WEEK_START_MS = int(datetime(2026, 10, 26, tzinfo=UTC).timestamp() * 1000)


def ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_ms", lambda: NOW_MS)


def test_budget_created_mid_period_counts_the_ledger_and_both_commands_agree(
    tmp_path: Path, frozen: None, cli: Callable[..., Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    # web: 5 Mtok a day every day ($10/day at $2/Mtok), three calls a day (8h, 12h, 16h)
    history = rows(flat_weekend_dips(5e6, weekend=1.0), 40, team="web", noise=0.02, end=NOW.date())
    import_rows(url, tmp_path / "h.jsonl", [r for r in history if _ts(r) <= NOW_MS])
    store = open_database(url)
    try:
        storage.set_budget(
            store,
            kind=BUDGET,
            scope="team:web",
            unit="usd",
            limit=50 * 10**9,
            period="week",
            hard=True,
        )
        booked = storage.ledger_spend(store, "team:web", "usd", WEEK_START_MS, NOW_MS + 1)
        # Monday to Thursday noon: 3 days + 2 calls, about $36.67; not $0
        assert abs(booked - 36_670_000_000) < 2 * 10**9
        (st,) = storage.status(store, storage.list_budgets(store, BUDGET))
        assert st.spent == booked  # the gateways start from it too
        (row,) = budget_rows(store, kind=BUDGET)
    finally:
        store.close()
    assert row["spent"] == D(booked) / 10**9
    # $36.67 + half of Thursday ($5) + Friday ($10) passes $50 on Friday: before the reset
    assert row["projected_exhaustion"] == "2026-10-30"
    assert row["runs_out_before_reset"] is True
    result = cli("forecast", "--db", url, "--history", "28", "-f", "json")
    assert result.exit_code == 0, result.output
    (flag,) = json.loads(result.output, parse_float=D)["budgets"]
    assert flag["exhausted_on"] == row["projected_exhaustion"]
    assert flag["spent"] == row["spent"]


def _ts(row: dict[str, Any]) -> int:
    from tokenomy.ledger.importer import parse_ts

    return parse_ts(row["ts"])


def test_forecast_as_of_takes_the_period_spend_from_the_ledger(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    history = rows(
        flat_weekend_dips(5e6, weekend=1.0), 45, team="web", noise=0.0, end=date(2026, 11, 20)
    )
    import_rows(url, tmp_path / "h.jsonl", history)
    store = open_database(url)
    try:
        storage.set_budget(
            store,
            kind=BUDGET,
            scope="team:web",
            unit="usd",
            limit=1000 * 10**9,
            period="month",
            hard=False,
        )
        in_november = storage.ledger_spend(
            store, "team:web", "usd", ms(date(2026, 11, 1)), ms(date(2026, 11, 15))
        )
    finally:
        store.close()
    result = cli("forecast", "--db", url, "--as-of", "2026-11-15", "-f", "json")
    assert result.exit_code == 0, result.output
    (flag,) = json.loads(result.output, parse_float=D)["budgets"]
    # 14 days x $10 (rounded per call), not $0, and not the later days of November
    assert flag["spent"] == D(in_november) / 10**9
    assert abs(flag["spent"] - 140) < 1


async def test_gateway_counters_agree_with_the_ledger_after_random_traffic(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")
    rng = random.Random(13)
    from tests.fakes import FakeOpenAI

    async with (
        FakeOpenAI() as oai,
        running_gateway(db_url, config=budget_config(oai.base_url)) as gw,
    ):
        for scope, unit in (("team:research", "usd"), ("user:alice", "tokens")):
            storage.set_budget(
                gw.store,
                kind=BUDGET,
                scope=scope,
                unit=unit,
                limit=10**15,
                period="month",
                hard=True,
            )
        await gw.gateway.budgets.refresh()

        async def call(session: aiohttp.ClientSession) -> int:
            body = {
                "model": rng.choice(["metered", "metered", "metered", "broken"]),
                "max_tokens": rng.randint(1, 9),
                "stream": rng.random() < 0.3,
                "messages": [{"role": "user", "content": "word " * rng.randint(1, 40)}],
            }
            async with session.post(
                f"{gw.url}/v1/chat/completions",
                data=orjson.dumps(body),
                headers={"Authorization": f"Bearer {gw.key}"},
            ) as resp:
                await resp.read()
                return resp.status

        async with aiohttp.ClientSession() as s:
            statuses = await asyncio.gather(*(call(s) for _ in range(120)))
        assert 200 in statuses and 500 in statuses
        await gw.gateway.budgets.flush()
        gw.flush()
        now = clock.now_ms()
        for b in storage.list_budgets(gw.store, BUDGET):
            (st,) = storage.status(gw.store, [b])
            ledger = storage.ledger_spend(gw.store, b.scope, b.unit, st.period_start, now + 1)
            assert ledger > 0
            assert st.spent == ledger, b.scope
        rows_ = {r["scope"]: r for r in budget_rows(gw.store, kind=BUDGET)}
        assert rows_["user:alice"]["spent"] == storage.ledger_spend(
            gw.store, "user:alice", "tokens", st.period_start, now + 1
        )


def test_import_raises_budgets_to_the_imported_spend(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    today = datetime.now(UTC).date()
    store = open_database(url)
    try:
        storage.set_budget(
            store,
            kind=BUDGET,
            scope="team:web",
            unit="tokens",
            limit=10**12,
            period="total",
            hard=True,
        )
    finally:
        store.close()
    history = rows(flat_weekend_dips(3e6, 1.0), 3, team="web", noise=0.0, end=today)
    source = tmp_path / "h.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
    result = CliRunner().invoke(app, ["ledger", "import", str(source), "--db", url])
    assert result.exit_code == 0, result.output
    store = open_database(url)
    try:
        (st,) = storage.status(store, storage.list_budgets(store, BUDGET))
        assert st.spent == sum(r["input_tokens"] + r["output_tokens"] for r in history)
    finally:
        store.close()
