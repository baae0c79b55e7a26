"""Every number and text an admin sends is bounded before any work (issue 7, defect 7).

``"limit": "1e999990"`` once ran an unbounded Decimal→int on the event loop (35 s for all
traffic, then a 500 with the exception text); limits past 2**63 nano-USD, rpm 1e20,
``since=99999999999d``, ``until=9999-12-31`` and ``where=status=<20 digits>`` answered
500 too. Now each is a 400 naming the field, the CLI gives the same message through the
same parsers, wrong methods get 405 with ``Allow``, and no 5xx body carries exception text.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.admin.conftest import Admin, Server
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET, MAX_COUNT, MAX_USD, to_amount
from tokenomy.cli import app as cli
from tokenomy.ledger.reports import parse_time

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"limit": "1e999990"}, "at most 1,000,000,000"),
        ({"limit": "1e1000000"}, "at most 1,000,000,000"),
        ({"limit": 1e308}, "at most 1,000,000,000"),
        ({"limit": "9223372036.854775808"}, "at most 1,000,000,000"),  # 2**63 nano-USD
        ({"limit": "1000000000.000000001"}, "at most 1,000,000,000"),
        ({"limit": "1e16", "unit": "tokens"}, "at most 1,000,000,000,000,000"),
        ({"limit": "1e-999999", "unit": "tokens"}, "whole number"),
        ({"limit": "NaN"}, "finite"),
        ({"limit": "-Infinity"}, "finite"),
        ({"limit": "-0.5"}, "cannot be negative"),
        ({"limit": "lots"}, "decimal"),
    ],
)
async def test_limits_out_of_range_are_400_naming_the_field(
    root: Admin, body: dict[str, Any], words: str
) -> None:
    r = await root.put("/admin/v1/budgets", {"scope": "team:a", **body})
    assert r.status == 400, r.body
    assert r.body["error"]["param"] == "limit" and r.message.startswith("limit:")
    assert words in r.message, r.message
    assert len(r.message) < 300  # the input is quoted short, never echoed whole


async def test_the_largest_limits_are_stored_and_read_back_exactly(root: Admin) -> None:
    r = await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": "1000000000"})
    assert r.status == 200 and r.body["limit"] == MAX_USD
    r = await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": "0.0000000015"})
    assert r.status == 200 and r.body["limit"] == Decimal("0.000000002")  # whole nano-USD
    r = await root.put(
        "/admin/v1/budgets", {"scope": "team:a", "limit": MAX_COUNT, "unit": "tokens"}
    )
    assert r.status == 200 and r.body["limit"] == MAX_COUNT
    r = await root.put("/admin/v1/limits", {"scope": "team:a", "rpm": MAX_COUNT, "tpm": 60.0})
    assert r.status == 200 and [b["limit"] for b in r.body["data"]] == [MAX_COUNT, 60]


@pytest.mark.parametrize(
    "body",
    [
        {"rpm": 10**20},
        {"rpm": Decimal("1e20")},
        {"rpm": Decimal("1e999999")},
        {"tpm": 1.5},
        {"tpm": True},
        {"tpm": "60"},
        {"rpm": -1},
    ],
)
async def test_rate_limits_out_of_range_are_400(root: Admin, body: dict[str, Any]) -> None:
    r = await root.put("/admin/v1/limits", {"scope": "team:a", **body})
    assert r.status == 400, r.body
    assert r.body["error"]["param"] == next(iter(body))


async def test_alerts_and_transfers_are_bounded(root: Admin) -> None:
    for alerts in ([Decimal("1e999999")], "nan", [0.5] * 11 + list(range(1, 11)), "1e-10"):
        r = await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": 1, "alerts": alerts})
        assert r.status == 400 and r.body["error"]["param"] == "alerts", (alerts, r.body)
    big = str(MAX_USD)
    assert (await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": big})).status == 200
    assert (await root.put("/admin/v1/budgets", {"scope": "team:b", "limit": big})).status == 200
    # Limits only move between budgets, but no budget may pass the largest limit.
    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:a", "to": "team:b", "amount": 1}
    )
    assert r.status == 409 and r.body["error"]["param"] == "amount", r.body
    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:a", "to": "team:b", "amount": "1e999990"}
    )
    assert r.status == 400 and "at most" in r.message
    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:a", "to": "team:a", "amount": 1}
    )
    assert r.status == 400 and "itself" in r.message


@pytest.mark.parametrize(
    ("params", "param", "words"),
    [
        ({"since": "99999999999d"}, "since", "at most 6 digits"),
        ({"since": "x" * 5_000}, "since", "at most 64 characters"),
        ({"until": "2026-02-30"}, "until", "day 30"),
        ({"since": "2026-11-01T25:00:00Z"}, "since", "out of range"),
        ({"where": "status=" + "9" * 20}, "where", "1-3 digits"),
        ({"where": "status=²"}, "where", "1-3 digits"),
        ({"where": "team=a\x00b"}, "where", "control characters"),
        ({"where": "model=" + "m" * 201}, "where", "at most 200"),
        ({"by": "team," + "x" * 5_000}, "by", "unknown field"),
        ({"limit": "²"}, "limit", "1-1000"),
    ],
)
async def test_query_parameters_out_of_range_are_400(
    root: Admin, params: dict[str, str], param: str, words: str
) -> None:
    path = "/admin/v1/budgets/audit" if param == "limit" else "/admin/v1/usage"
    r = await root.get(path, **params)
    assert r.status == 400, r.body
    assert r.body["error"]["param"] == param and words in r.message, r.message
    assert len(r.message) < 400


async def test_the_ends_of_the_calendar_are_valid_times(root: Admin) -> None:
    for params in (
        {"until": "9999-12-31"},
        {"since": "0000-01-01", "until": "9999-12-31T23:59:60Z"},
        {"since": "999999w"},
        {"since": "2026-11-01T10:00:00.123456789-23:59"},
    ):
        r = await root.get("/admin/v1/usage", **params)
        assert (r.status, r.body) == (200, {"data": []}), params
    # The day after 9999-12-31 has no datetime; the arithmetic still knows it.
    assert parse_time("9999-12-31", end_of_day=True) == 253402300800000
    assert parse_time("2026-11-28", end_of_day=True) == parse_time("2026-11-29")
    assert parse_time("2026-11-01T10:00:00+02:00") == parse_time("2026-11-01T08:00:00Z")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/admin/v1/budgets", {"scope": "team:a\x00", "limit": 1}),
        ("PUT", "/admin/v1/limits", {"scope": "team:" + "a" * 201, "rpm": 1}),
        ("POST", "/admin/v1/keys", {"org": "acme\x00"}),
        ("POST", "/admin/v1/keys", {"org": "acme", "user": "u\n"}),
        ("POST", "/admin/v1/keys", {"org": "acme", "name": "n" * 201}),
    ],
)
async def test_text_no_database_stores_is_400(
    root: Admin, server: Server, method: str, path: str, body: dict[str, Any]
) -> None:
    # PostgreSQL refuses NUL in text: this used to reach it and answer 500.
    r = await root.call(method, path, body)
    assert r.status == 400, r.body
    assert server.store.list_keys() == [] and storage.list_budgets(server.store) == []


async def test_bodies_json_cannot_hold_are_400(root: Admin) -> None:
    for raw in (
        b'{"scope": "team:\\ud800", "limit": 1}',  # a lone surrogate
        b'{"scope": "team:a", "limit": ' + b"9" * 5000 + b"}",  # past int's 4300 digits
        b"[" * 50_000 + b"]" * 50_000,
        b'{"scope": "team:a", "limit": 1, "alerts": [[[[[[[[[1]]]]]]]]]}',
    ):
        r = await root.call("PUT", "/admin/v1/budgets", raw=raw)
        assert r.status in (400, 413), r.body
        assert r.status == 413 or r.body["error"]["code"] == "invalid_request_error"


async def test_wrong_methods_get_405_with_allow(root: Admin, server: Server) -> None:
    for method, path, allow in [
        ("PATCH", "/admin/v1/budgets", "GET, HEAD, PUT"),
        ("DELETE", "/admin/v1/keys", "GET, HEAD, POST"),
        ("GET", "/admin/v1/budgets/team:a", "DELETE"),
        ("GET", "/admin/v1/budgets/transfer", "POST"),
        ("POST", "/admin/v1/usage", "GET, HEAD"),
        ("PUT", "/admin/v1/openapi.json", "GET, HEAD"),
    ]:
        headers = {"Authorization": f"Bearer {root.secret}"}
        async with server.session.request(method, server.base + path, headers=headers) as resp:
            assert resp.status == 405, (method, path)
            assert resp.headers["Allow"] == allow
            body = await resp.json()
            assert (
                body["error"]["code"] == "method_not_allowed" and method in body["error"]["message"]
            )


async def test_5xx_bodies_never_carry_exception_text(
    root: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret-db.internal:5432 password=hunter2")

    monkeypatch.setattr(storage, "set_budget", bug)
    r = await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": 1})
    assert r.status == 500 and r.body["error"]["code"] == "internal_error"
    assert "secret-db" not in str(r.body) and "hunter2" not in str(r.body)

    def down(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("unable to open database file /srv/secret/ledger.db")

    monkeypatch.setattr(storage, "set_budget", down)
    r = await root.put("/admin/v1/budgets", {"scope": "team:a", "limit": 1})
    assert r.status == 503 and "/srv/secret" not in str(r.body)


# -- the CLI shares the parsers: the same clear errors, never a traceback -------------------
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["budgets", "set", "team:a", "--limit", "1e999990"], "at most 1,000,000,000"),
        (["budgets", "set", "team:a", "--limit", "nan"], "finite"),
        (["budgets", "set", "team:a", "--limit", "-1"], "cannot be negative"),
        (["budgets", "set", "team:a\x00", "--limit", "1"], "control characters"),
        (["budgets", "transfer", "1e999990", "--from", "team:a", "--to", "team:b"], "at most"),
        (["limits", "set", "team:a", "--rpm", "100000000000000000000"], "at most"),
        (["usage", "--since", "99999999999d"], "at most 6 digits"),
        (["usage", "--where", "status=" + "9" * 20], "1-3 digits"),
        (["usage", "--where", "team=a\x00"], "control characters"),
    ],
)
def test_cli_gives_the_same_clear_errors(sqlite_url: str, args: list[str], words: str) -> None:
    r = CliRunner().invoke(cli, [*args, "--db", sqlite_url])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert words in r.output, r.output


def test_cli_reads_the_last_day_of_the_calendar(sqlite_url: str) -> None:
    r = CliRunner().invoke(cli, ["usage", "--until", "9999-12-31", "--db", sqlite_url])
    assert r.exit_code == 0, r.output


def test_to_amount_checks_before_any_arithmetic() -> None:
    # Without the bound check first, int(Decimal("1e999990") * 10**9) runs for minutes.
    for value in (Decimal("1e999990"), Decimal("-1e999990"), Decimal("sNaN")):
        with pytest.raises(ValueError):
            to_amount("usd", value)
    assert to_amount("usd", Decimal("1e-999999")) == 0
    assert to_amount("requests", MAX_COUNT) == MAX_COUNT
    assert storage.get_budget is not None and BUDGET == "budget"
