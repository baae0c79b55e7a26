"""``tokenomy invoice``: a team's month, equal to ``tokenomy usage`` for that team and month."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders import usage_event
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.cli import app
from tokenomy.database import open_database
from tokenomy.events import Usage
from tokenomy.ledger.reports import parse_time

RUNNER = CliRunner()
NOV = parse_time("2026-11-01")
DEC = parse_time("2026-12-01")


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    store = open_database(db_url)
    evs = []
    for i in range(60):
        ts = NOV - 3_600_000 if i == 0 else (DEC if i == 1 else NOV + i * 7_200_000)
        evs.append(
            usage_event(
                i,
                ts_ms=ts,  # the first two fall just outside November
                org="acme" if i % 5 else "globex",
                team="research" if i % 3 else "sales",
                model=("gpt-4o", "claude-sonnet")[i % 2],
                agent=("planner", "coder")[i % 4 // 2],
                usage=Usage(
                    input_tokens=1000 + i,
                    cached_tokens=100,
                    cache_write_tokens=10,
                    output_tokens=300 + i,
                    reasoning_tokens=50,
                ),
                cost_nanos=None if i == 7 else 1_234_567 * (i + 1),
            )
        )
    store.insert_events(evs)
    for team in ("research", "sales"):
        storage.set_budget(
            store,
            kind=BUDGET,
            scope=f"team:{team}",
            unit="usd",
            limit=100 * 10**9,
            period="month",
            hard=True,
        )
    with monkeypatch.context() as m:  # the transfer is made mid-November
        m.setattr("tokenomy.clock.now_ms", lambda: NOV + 10 * 86_400_000)
        storage.transfer(store, "team:sales", "team:research", 5 * 10**9, "usd", actor="admin:x")
    store.close()
    return db_url


def _run(db: str, *args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--db", db])
    assert result.exit_code == 0, result.output
    return result.stdout


def _usage_total(db: str, *where: str) -> Decimal:
    args = ["usage", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "json"]
    for w in where:
        args += ["--where", w]
    rows = json.loads(_run(db, *args))
    return Decimal(str(rows[0]["cost_usd"]))


def test_json_statement_total_equals_tokenomy_usage_for_the_team_and_month(db: str) -> None:
    out = json.loads(
        _run(db, "invoice", "--team", "research", "--period", "2026-11", "--format", "json")
    )
    assert set(out) >= {"team", "period", "lines", "transfers", "total_usd"}
    assert (out["team"], out["period"]) == ("research", "2026-11")
    assert Decimal(str(out["total_usd"])) == _usage_total(db, "team=research")
    assert sum(Decimal(str(line["cost_usd"])) for line in out["lines"]) == Decimal(
        str(out["total_usd"])
    )
    for line in out["lines"]:
        assert {
            "model",
            "agent",
            "input_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost_usd",
        } <= set(line)
    assert {(line["model"], line["agent"]) for line in out["lines"]} >= {
        ("gpt-4o", "planner"),
        ("claude-sonnet", "coder"),
    }
    # The transfer from sales shows as money in; sales's statement shows it going out.
    (t,) = out["transfers"]
    assert (t["direction"], t["counterpart"], Decimal(str(t["amount"]))) == (
        "in",
        "team:sales",
        Decimal(5),
    )
    sales = json.loads(
        _run(
            db,
            "invoice",
            "--team",
            "sales",
            "--period",
            "2026-11",
            "--format",
            "json",
            "--org",
            "acme",
        )
    )
    assert [x["direction"] for x in sales["transfers"]] == ["out"]
    assert Decimal(str(sales["total_usd"])) == _usage_total(db, "team=sales", "org=acme")


def test_another_currency_at_the_configured_dated_rate(db: str, tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[currency]\ndate = 2026-11-30\nCNY = "7.10"\n')
    out = json.loads(
        _run(
            db,
            "invoice",
            "--team",
            "research",
            "--period",
            "2026-11",
            "--currency",
            "CNY",
            "-c",
            str(cfg),
            "--format",
            "json",
        )
    )
    total = Decimal(str(out["total_usd"]))
    assert Decimal(str(out["total_cny"])) == (total * Decimal("7.10")).quantize(Decimal("0.000001"))
    assert "7.10 CNY/USD" in out["rate_label"] and "2026-11-30" in out["rate_label"]
    # Without a configured rate: a one-line error saying how to add one.
    result = RUNNER.invoke(
        app,
        ["invoice", "--team", "research", "--period", "2026-11", "--currency", "CNY", "--db", db],
    )
    assert result.exit_code == 1 and "[currency]" in result.output


def test_csv_and_printable_html(db: str, tmp_path: Path) -> None:
    text = _run(db, "invoice", "--team", "research", "--period", "2026-11", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    lines = [r for r in rows if r["section"] == "line"]
    (total,) = [r for r in rows if r["section"] == "total"]
    assert sum(Decimal(r["cost_usd"]) for r in lines) == Decimal(total["cost_usd"])
    assert Decimal(total["cost_usd"]) == _usage_total(db, "team=research")
    html_file = tmp_path / "s.html"
    _run(
        db,
        "invoice",
        "--team",
        "research",
        "--period",
        "2026-11",
        "--format",
        "html",
        "-o",
        str(html_file),
    )
    html = html_file.read_text()
    assert "@media print" in html and "<script" not in html and "http" not in html.lower()
    assert str(_usage_total(db, "team=research")).rstrip("0") in html
    table = _run(db, "invoice", "--team", "research", "--period", "2026-11")
    assert "gpt-4o" in table and "transfers" in table.lower()


def test_a_bad_period_is_refused(db: str) -> None:
    result = RUNNER.invoke(app, ["invoice", "--team", "x", "--period", "2026-13", "--db", db])
    assert result.exit_code == 1 and "YYYY-MM" in result.output
