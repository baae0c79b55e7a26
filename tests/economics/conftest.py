"""Helpers for economics tests: real SQLite ledgers with known daily usage."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.builders import usage_event
from tokenomy.cli.economics import register
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger.importer import import_file

# A fixed "today" so that every test ledger and forecast is reproducible.
TODAY = date(2026, 11, 1)


def day_ms(day: date, hour: int = 12) -> int:
    """Epoch milliseconds of ``hour`` o'clock UTC on ``day``."""
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def event(
    day: date,
    *,
    input_tokens: int,
    output_tokens: int,
    cost_nanos: int | None,
    team: str = "research",
    model: str = "gpt-4o",
    n: int = 0,
) -> UsageEvent:
    """One ledger event on ``day`` (noon UTC)."""
    return usage_event(
        id=f"{day.isoformat()}-{team}-{model}-{n}",
        ts_ms=day_ms(day),
        model=model,
        org="acme",
        team=team,
        user="u1",
        key_id="k1",
        provider="openai",
        location="cloud",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        cost_nanos=cost_nanos,
    )


def growth_events(
    days: int,
    *,
    start_tokens: float,
    daily_growth: float,
    noise: float,
    team: str = "research",
    model: str = "gpt-4o",
    seed: int = 42,
    end: date = TODAY - timedelta(days=1),
    usd_per_mtok: float = 2.0,
) -> list[UsageEvent]:
    """``days`` days ending ``end`` whose tokens grow by ``daily_growth`` with log-noise."""
    rng = random.Random(seed)
    events = []
    for i in range(days):
        day = end - timedelta(days=days - 1 - i)
        tokens = start_tokens * (1 + daily_growth) ** i * math.exp(rng.gauss(0.0, noise))
        inp = int(tokens * 0.8)
        out = int(tokens) - inp
        cost = int(tokens / 1e6 * usd_per_mtok * 1e9)
        events.append(
            event(
                day,
                input_tokens=inp,
                output_tokens=out,
                cost_nanos=cost,
                team=team,
                model=model,
                n=i,
            )
        )
    return events


def as_import_row(e: UsageEvent) -> dict[str, object]:
    """A ledger event as a row of ``tokenomy ledger import`` (epoch-ms ``ts``)."""
    row: dict[str, object] = {
        "id": e.id,
        "ts": e.ts_ms,
        "org": e.org,
        "team": e.team,
        "user": e.user,
        "provider": e.provider,
        "model": e.model,
        "input_tokens": e.usage.input_tokens,
        "cached_tokens": e.usage.cached_tokens,
        "output_tokens": e.usage.output_tokens,
    }
    if e.cost_nanos is not None:
        row["cost_usd"] = str(Decimal(e.cost_nanos) / 10**9)
    return row


@pytest.fixture
def ledger(tmp_path: Path) -> Callable[[list[UsageEvent]], str]:
    """Write events into a fresh SQLite ledger and return its URL."""

    def build(events: list[UsageEvent]) -> str:
        # Through ``tokenomy ledger import``, as a team would bring its history.
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        source = tmp_path / "history.jsonl"
        source.write_text("".join(json.dumps(as_import_row(e)) + "\n" for e in events))
        store = open_store(url)
        try:
            result = import_file(store, source)
        finally:
            store.close()
        assert result.imported == len(events)
        return url

    return build


@pytest.fixture
def cli() -> Iterator[Callable[..., object]]:
    """Invoke the economics commands on a small app of our own, as the main app will."""
    app = typer.Typer(pretty_exceptions_enable=False)
    register(app)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> object:
        return runner.invoke(app, list(args), env=env)

    yield invoke
