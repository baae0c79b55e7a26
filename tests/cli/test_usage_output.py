"""``tokenomy usage`` output details: plain decimals in JSON, grouping by why calls failed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.builders import usage_event
from tokenomy.cli import app
from tokenomy.events import Usage
from tokenomy.ledger import open_store

RUNNER = CliRunner()


def test_zero_cost_is_a_plain_decimal_and_failures_group_by_error_kind(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_store(db)
    store.insert_events(
        [
            usage_event(1, usage=Usage(input_tokens=10, output_tokens=5), cost_nanos=1_500),
            usage_event(2, status=429, error_kind="budget_exceeded", cost_nanos=0),
            usage_event(3, status=429, error_kind="budget_exceeded", cost_nanos=0),
            usage_event(4, status=502, error_kind="upstream_unavailable", cost_nanos=0),
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
