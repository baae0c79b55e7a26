"""``tokenomy usage`` output details: plain decimals in JSON, grouping by why calls failed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tokenomy.cli import app
from tokenomy.ledger import open_store
from tokenomy.types import Usage, UsageEvent

RUNNER = CliRunner()


def _event(i: int, status: int, error_kind: str, cost: int) -> UsageEvent:
    return UsageEvent(
        id=f"req_{i}",
        ts_ms=1_764_547_200_000 + i,
        api_format="openai",
        endpoint="chat.completions",
        model="gpt-4o-mini",
        status=status,
        org="acme",
        team="research",
        error_kind=error_kind,
        usage=Usage(input_tokens=10 if cost else 0, output_tokens=5 if cost else 0),
        cost_nanos=cost,
    )


def test_zero_cost_is_a_plain_decimal_and_failures_group_by_error_kind(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_store(db)
    store.insert_events(
        [
            _event(1, 200, "", 1_500),
            _event(2, 429, "budget_exceeded", 0),
            _event(3, 429, "budget_exceeded", 0),
            _event(4, 502, "upstream_unavailable", 0),
        ]
    )
    store.close()

    result = RUNNER.invoke(
        app, ["usage", "--by", "status,error_kind", "--format", "json", "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert "E-" not in result.output  # never exponent notation such as 0E-9
    rows = {(r["status"], r["error_kind"]): r for r in json.loads(result.output)}
    assert set(rows) == {(200, ""), (429, "budget_exceeded"), (502, "upstream_unavailable")}
    assert rows[(429, "budget_exceeded")]["requests"] == 2
    assert '"cost_usd": 0.000000000' in result.output
    assert '"cost_usd": 0.000001500' in result.output
