"""``tokenomy export``: the ledger in FOCUS 1.2 columns (CSV, Parquet) or raw, streamed."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders import usage_event
from tokenomy.cli import app
from tokenomy.database import open_database
from tokenomy.events import Usage
from tokenomy.finops.export import ExportFormat, export
from tokenomy.finops.focus import FOCUS_COLUMNS
from tokenomy.ledger.reports import parse_time, usage_report

RUNNER = CliRunner()
NOV = parse_time("2026-11-01")
MANDATORY = {
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "SkuPriceId",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "BillingCurrency",
    "Tags",
}


@pytest.fixture
def db(db_url: str) -> str:
    store = open_database(db_url)
    store.insert_events(
        usage_event(
            i,
            ts_ms=NOV + (i // 3) * 1_800_000,  # three events share each timestamp
            org="acme",
            team=("research", "sales")[i % 2],
            agent="coder" if i % 4 else "",
            task=f"t{i % 5}",
            provider="oai" if i % 3 else "box",
            upstream_model="gpt-4o-2024-08-06",
            location="cloud" if i % 3 else "local",
            price_source="genai-prices 0.2.3:openai/gpt-4o",
            usage=Usage(input_tokens=500 + i, cached_tokens=20, output_tokens=40 + i),
            cost_nanos=None if i == 4 else 987_654 * (i + 1),
        )
        for i in range(103)
    )
    store.close()
    return db_url


def _usage(db: str) -> dict[str, object]:
    store = open_database(db)
    try:
        return usage_report(store, since_ms=NOV, until_ms=NOV + 30 * 86_400_000)[0]
    finally:
        store.close()


def test_focus_csv_has_the_focus_columns_and_adds_up_to_tokenomy_usage(db: str) -> None:
    result = RUNNER.invoke(
        app,
        [
            "export",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-30",
            "--format",
            "focus-csv",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert set(rows[0]) >= MANDATORY and list(rows[0]) == list(FOCUS_COLUMNS)
    usage = _usage(db)
    assert len(rows) == usage["requests"] == 103
    assert sum(Decimal(r["BilledCost"]) for r in rows) == usage["cost_usd"]
    assert sum(Decimal(r["EffectiveCost"]) for r in rows) == usage["cost_usd"]
    assert sum(int(r["ConsumedQuantity"]) for r in rows) == (
        usage["input_tokens"] + usage["output_tokens"]  # type: ignore[operator]
    )
    r = rows[1]
    assert r["x_FocusVersion"] == "1.2" and r["ConsumedUnit"] == "Tokens"
    assert r["ChargeCategory"] == "Usage" and r["BillingCurrency"] == "USD"
    assert r["ChargePeriodStart"] == "2026-11-01T00:00:00Z"
    assert r["ChargePeriodEnd"] == "2026-11-01T01:00:00Z"
    assert (r["BillingPeriodStart"], r["BillingPeriodEnd"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert r["SkuId"] == "oai/gpt-4o-2024-08-06" and r["ServiceName"] == "oai LLM API"
    tags = json.loads(r["Tags"])
    assert tags["team"] == "sales" and tags["agent"] == "coder" and tags["task"] == "t1"
    local = rows[0]
    assert local["InvoiceIssuerName"] == "acme" and local["ServiceName"] == "box local inference"
    unpriced = [x for x in rows if x["x_Unpriced"] == "true"]
    assert [x["BilledCost"] for x in unpriced] == ["0"]


def test_streamed_in_small_pages_nothing_is_lost_or_repeated(db: str) -> None:
    store = open_database(db)
    out = io.BytesIO()
    n = export(store, ExportFormat.jsonl, out, page=7)  # pages split equal timestamps
    store.close()
    ids = [json.loads(line)["id"] for line in out.getvalue().decode().splitlines()]
    assert n == 103 and len(ids) == len(set(ids)) == 103


def test_focus_parquet_reads_back_with_the_same_totals(db: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # the test extra installs it: never skipped

    path = tmp_path / "focus.parquet"
    result = RUNNER.invoke(
        app, ["export", "--format", "focus-parquet", "-o", str(path), "--db", db]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(path)
    assert table.num_rows == 103 and table.column_names == list(FOCUS_COLUMNS)
    assert sum(table.column("BilledCost").to_pylist()) == _usage(db)["cost_usd"]
    assert table.schema.metadata[b"focus_version"] == b"1.2"


def test_raw_csv_and_progress_bar_on_stderr(db: str, tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    result = RUNNER.invoke(
        app, ["export", "--format", "csv", "-o", str(path), "--progress", "--db", db]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 103 and rows[0]["id"] == "e0"
    assert "103/103" in result.stderr and "103 events written" in result.stderr
