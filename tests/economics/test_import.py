"""``tokenomy ledger import``: history from elsewhere, validated, priced, idempotent."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.economics.series import write_jsonl
from tokenomy.cli import app
from tokenomy.database import open_database
from tokenomy.ledger.importer import ImportRowError, import_file, parse_ts
from tokenomy.pricing.history import CatalogPricer

runner = CliRunner()

GOOD = [
    {
        "id": "h-1",
        "ts": "2026-10-01T10:00:00Z",
        "org": "acme",
        "team": "research",
        "user": "ana",
        "agent": "triage",
        "task": "t-9",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1_000_000,
        "cached_tokens": 500_000,
        "output_tokens": 100_000,
    },
    {
        "id": "h-2",
        "ts": 1_790_000_000_000,
        "team": "research",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 2000,
        "output_tokens": 100,
        "cost_usd": "0.123456789",
    },
]


def cli(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_import_prices_from_the_catalog_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    source = write_jsonl(tmp_path / "h.jsonl", GOOD)
    first = cli("ledger", "import", str(source), "--db", url, "--json")
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    summary = json.loads(first.output, parse_float=D)  # type: ignore[attr-defined]
    assert (summary["imported"], summary["skipped_existing"]) == (2, 0)
    assert summary["priced_from_catalog"] == 1
    store = open_database(url)
    try:
        e = store.get_event("h-1")
        assert e is not None and (e.team, e.user, e.agent, e.task) == (
            "research",
            "ana",
            "triage",
            "t-9",
        )
        # gpt-4o list prices: 500k uncached x $2.50 + 500k cache reads x $1.25 + 100k x $10
        assert e.cost_nanos == 2_875_000_000 and "genai-prices" in e.price_source
        assert e.ts_ms == parse_ts("2026-10-01T10:00:00Z") == 1_790_848_800_000
        e2 = store.get_event("h-2")
        assert e2 is not None and e2.cost_nanos == 123_456_789
        assert e2.price_source == "import:cost_usd"
    finally:
        store.close()
    again = cli("ledger", "import", str(source), "--db", url)
    assert again.exit_code == 0
    assert "imported 0 of 2" in again.output and "h-1, h-2" in again.output  # type: ignore[attr-defined]


def test_csv_with_epoch_and_iso_timestamps(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "id,ts,team,provider,model,input_tokens,output_tokens,cost_usd\n"
        "c1,2026-10-02T00:00:00+02:00,ops,openai,gpt-4o,10,5,0.01\n"
        "c2,1790000000000,ops,openai,gpt-4o,,5,\n",
        encoding="utf-8",
    )
    store = open_database(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        result = import_file(store, source, pricer=CatalogPricer())
        assert (result.rows, result.imported, result.priced_from_catalog) == (2, 2, 1)
        c1 = store.get_event("c1")
        assert c1 is not None and c1.ts_ms == parse_ts("2026-10-01T22:00:00Z")
        c2 = store.get_event("c2")
        assert (
            c2 is not None and c2.usage.input_tokens == 0 and c2.cost_nanos == 50_000
        )  # 5 x $10/M
    finally:
        store.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"input_tokens": -1}, "input_tokens: expected a whole number"),
        ({"ts": "yesterday"}, "ts: not ISO-8601"),
        ({"ts": 1_790_000_000}, "between 2000 and 2200"),  # seconds, not milliseconds
        ({"model": "no-such-model-xyz", "cost_usd": None}, "give cost_usd"),
        ({"cached_tokens": 5_000_000}, "exceed input_tokens"),
        ({"input_token": 3}, "unknown field 'input_token'"),
        ({"id": "h-1"}, "repeats line 1"),
        ({"cost_usd": "NaN"}, "cost_usd"),
    ],
)
def test_a_bad_row_is_reported_by_line_and_nothing_is_imported(
    tmp_path: Path, bad: dict[str, object], message: str
) -> None:
    rows = [GOOD[0], GOOD[1] | {"id": "h-3"}, {**GOOD[1], **bad}]
    source = write_jsonl(tmp_path / "h.jsonl", rows)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    result = cli("ledger", "import", str(source), "--db", url)
    assert result.exit_code == 1
    assert "line 3:" in result.output and message in result.output  # type: ignore[attr-defined]
    store = open_database(url)
    try:
        assert store.count_events() == 0
        with pytest.raises(ImportRowError) as err:
            import_file(store, source, pricer=CatalogPricer())
        assert err.value.line == 3
    finally:
        store.close()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "h.jsonl", GOOD)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    result = cli("ledger", "import", str(source), "--db", url, "--dry-run")
    assert result.exit_code == 0 and "would import 2 of 2" in result.output  # type: ignore[attr-defined]
    store = open_database(url)
    try:
        assert store.count_events() == 0
    finally:
        store.close()
