"""The admin API as a global admin: auth, keys, budgets, rate limits, transfer, audit, usage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest

from tests.admin.conftest import Admin, Server
from tests.builders import usage_event
from tokenomy.admin import models as m
from tokenomy.admin.keys import revoke_admin_key
from tokenomy.events import Usage
from tokenomy.ledger.reports import USAGE_COLUMNS
from tokenomy.ledger.store import hash_secret

pytestmark = pytest.mark.timeout(60)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


_event = partial(
    usage_event,
    ts_ms=_ms("2026-11-01T10:00:00"),
    org="acme",
    user="alice",
    key_id="k1",
    usage=Usage(input_tokens=1000, output_tokens=300),
)


# -- authentication ----------------------------------------------------------------------
async def test_missing_invalid_and_revoked_keys_get_401(server: Server) -> None:
    r = await server.client(None).get("/admin/v1/keys")
    assert r.status == 401
    assert r.body["error"]["code"] == "invalid_api_key"
    assert "Missing admin key" in r.message

    r = await server.client("tka-000000000000-nope").get("/admin/v1/budgets")
    assert (r.status, r.message) == (401, "Invalid admin key.")

    _, gateway_secret = server.store.create_key(org="acme", team="research")
    r = await server.client(gateway_secret).get("/admin/v1/usage")
    assert r.status == 401 and "Not an admin key" in r.message

    admin = server.admin()
    assert (await admin.get("/admin/v1/keys")).status == 200
    key_id = admin.secret.split("-")[1]  # type: ignore[union-attr]
    assert revoke_admin_key(server.store, key_id)
    r = await admin.get("/admin/v1/keys")
    assert (r.status, r.message) == (401, "This admin key has been revoked.")


async def test_401_carries_a_bearer_challenge(server: Server) -> None:
    async with server.session.get(server.base + "/admin/v1/limits") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


# -- gateway API keys --------------------------------------------------------------------
async def test_global_admin_creates_lists_and_revokes_keys(root: Admin, server: Server) -> None:
    r = await root.post(
        "/admin/v1/keys", {"org": "acme", "team": "research", "user": "alice", "name": "laptop"}
    )
    assert r.status == 201, r.body
    created = m.CreatedKeyOut.model_validate(r.body)
    assert created.secret.startswith("tk-") and created.team == "research"
    # The secret works on the gateway: the store knows its hash, never the secret itself.
    assert any(p and p.key_id == created.key_id for p in server.store.key_table().values())

    await root.post("/admin/v1/keys", {"org": "acme", "team": "support"})
    r = await root.get("/admin/v1/keys")
    listed = m.KeyList.model_validate(r.body).data
    assert {k.team for k in listed} == {"research", "support"}
    assert all("secret" not in k for k in r.body["data"])

    r = await root.delete(f"/admin/v1/keys/{created.key_id}")
    assert r.status == 200 and m.RevokedOut.model_validate(r.body).revoked
    # The gateway's key table now maps the secret's hash to None: refused as revoked.
    assert server.store.key_table()[hash_secret(created.secret)] is None
    r = await root.delete(f"/admin/v1/keys/{created.key_id}")
    assert r.status == 404 and created.key_id in r.message

    r = await root.get("/admin/v1/keys", include_revoked="false")
    assert [k["team"] for k in r.body["data"]] == ["support"]


# -- budgets, limits, transfer, audit ----------------------------------------------------
async def test_budget_crud_is_exact_and_audited(root: Admin) -> None:
    r = await root.put(
        "/admin/v1/budgets",
        {"scope": "team:research", "limit": "0.1", "period": "month", "alerts": [0.5, 0.8]},
    )
    assert r.status == 200, r.body
    out = m.BudgetOut.model_validate(r.body)
    assert (
        out.limit == Decimal("0.1") and out.hard and out.alerts == [Decimal("0.5"), Decimal("0.8")]
    )
    # A JSON float limit is read exactly too (never through a binary float).
    r = await root.put(
        "/admin/v1/budgets",
        {"scope": "team:support", "limit": 12.35, "hard": False, "alerts": "50%,100%"},
    )
    assert r.status == 200 and r.body["limit"] == Decimal("12.35") and r.body["hard"] is False
    r = await root.put(
        "/admin/v1/budgets",
        {"scope": "org:acme", "limit": 1000000, "unit": "tokens", "period": "day"},
    )
    assert r.status == 200 and r.body["limit"] == 1000000

    r = await root.get("/admin/v1/budgets")
    rows = m.BudgetList.model_validate(r.body).data
    by_scope = {row.scope: row for row in rows}
    assert set(by_scope) == {"team:research", "team:support", "org:acme"}
    research = by_scope["team:research"]
    assert (research.limit, research.spent, research.remaining) == (
        Decimal("0.1"),
        0,
        Decimal("0.1"),
    )
    assert research.period_end is not None and research.alerts == "0.5,0.8"

    r = await root.post(
        "/admin/v1/budgets/transfer",
        {"from": "team:support", "to": "team:research", "amount": "2.35"},
    )
    assert r.status == 200, r.body
    moved = m.TransferOut.model_validate(r.body)
    assert moved.from_budget.limit == 10
    assert moved.to.limit == Decimal("2.45")

    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:support", "to": "team:research", "amount": 11}
    )
    assert r.status == 409 and "headroom" in r.message

    r = await root.delete("/admin/v1/budgets/team:support")
    assert r.status == 200 and r.body == {"scope": "team:support", "deleted": 1}
    r = await root.delete("/admin/v1/budgets/team:support")
    assert r.status == 404 and "team:support" in r.message
    r = await root.delete("/admin/v1/budgets/org:acme", unit="usd")
    assert r.status == 404
    assert (await root.delete("/admin/v1/budgets/org:acme", unit="tokens")).status == 200

    r = await root.get("/admin/v1/budgets/audit", limit="100")
    audit = m.AuditList.model_validate(r.body).data
    actions = [a.action for a in audit]
    assert actions.count("set") == 3 and actions.count("delete") == 2
    assert {"transfer_in", "transfer_out"} <= set(actions)
    actor = f"admin:{root.secret.split('-')[1]}"  # type: ignore[union-attr]
    assert {a.actor for a in audit} == {actor}
    transfer = next(a for a in audit if a.action == "transfer_in")
    assert transfer.detail == {
        "from": "team:support",
        "to": "team:research",
        "amount": 2_350_000_000,
        "unit": "usd",
    }
    assert len((await root.get("/admin/v1/budgets/audit", limit="2")).body["data"]) == 2


async def test_rate_limits_set_list_delete(root: Admin) -> None:
    r = await root.put("/admin/v1/limits", {"scope": "team:research", "rpm": 600, "tpm": 2000000})
    assert r.status == 200, r.body
    assert [
        (b["unit"], b["limit"]) for b in m.LimitsOut.model_validate(r.body).model_dump()["data"]
    ] == [("requests", 600), ("tokens", 2000000)]
    r = await root.get("/admin/v1/limits")
    rows = m.BudgetList.model_validate(r.body).data
    assert {(row.scope, row.unit, row.period) for row in rows} == {
        ("team:research", "requests", "minute"),
        ("team:research", "tokens", "minute"),
    }
    # Rate limits and budgets are separate lists.
    assert (await root.get("/admin/v1/budgets")).body == {"data": []}

    r = await root.delete("/admin/v1/limits/team:research", unit="tokens")
    assert r.body == {"scope": "team:research", "deleted": 1}
    r = await root.delete("/admin/v1/limits/team:research", unit="watts")
    assert r.status == 400 and r.body["error"]["param"] == "unit"
    assert (await root.delete("/admin/v1/limits/team:research")).body["deleted"] == 1
    assert (await root.delete("/admin/v1/limits/team:research")).status == 404


# -- usage -------------------------------------------------------------------------------
async def test_usage_report_json_is_exact(root: Admin, server: Server) -> None:
    server.store.insert_events(
        [
            _event(1, team="research", cost_nanos=1_234_567),
            _event(2, team="research", cost_nanos=1, model="claude-sonnet-4"),
            _event(3, team="support", cost_nanos=100_000_000, ts_ms=_ms("2026-11-02T10:00:00")),
            _event(4, team="support", cost_nanos=5, ts_ms=_ms("2026-10-01T10:00:00")),
        ]
    )
    r = await root.get("/admin/v1/usage", by="team")
    assert r.status == 200, r.body
    rows = m.UsageReport.model_validate(r.body).data
    assert [(x.team, x.requests, x.cost_usd) for x in rows] == [
        ("research", 2, Decimal("0.001234568")),
        ("support", 2, Decimal("0.100000005")),
    ]
    assert r.body["data"][0]["cost_usd"] == Decimal("0.001234568")  # a JSON number, exact

    r = await root.call(
        "GET",
        "/admin/v1/usage",
        params=[
            ("since", "2026-11-01"),
            ("until", "2026-11-01"),
            ("by", "team,model"),
            ("where", "team=research"),
            ("where", "model=gpt-4o"),
        ],
    )
    assert [(x["team"], x["model"], x["input_tokens"]) for x in r.body["data"]] == [
        ("research", "gpt-4o", 1000)
    ]
    assert list(r.body["data"][0]) == ["team", "model", *USAGE_COLUMNS]

    r = await root.get("/admin/v1/usage", by="colour")
    assert r.status == 400 and r.message.startswith("by:") and "colour" in r.message
    r = await root.get("/admin/v1/usage", since="last tuesday")
    assert r.status == 400 and r.body["error"]["param"] == "since"
    r = await root.get("/admin/v1/usage", where="colour=red")
    assert r.status == 400 and r.body["error"]["param"] == "where"


# -- bad bodies --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/admin/v1/budgets", {"limit": 5}, "scope", "Field required"),
        ("/admin/v1/budgets", {"scope": "galaxy:x", "limit": 5}, "scope", "scope must be"),
        ("/admin/v1/budgets", {"scope": "team:a", "limit": -1}, "limit", "cannot be negative"),
        ("/admin/v1/budgets", {"scope": "team:a", "limit": "lots"}, "limit", "decimal"),
        ("/admin/v1/budgets", {"scope": "team:a", "limit": 5, "unit": "eur"}, "unit", "usd"),
        (
            "/admin/v1/budgets",
            {"scope": "team:a", "limit": 5, "period": "fortnight"},
            "period",
            "month",
        ),
        ("/admin/v1/budgets", {"scope": "team:a", "limit": 5, "hard": "yes"}, "hard", "bool"),
        ("/admin/v1/budgets", {"scope": "team:a", "limit": 5, "alerts": [0]}, "alerts", "fraction"),
        (
            "/admin/v1/budgets",
            {"scope": "team:a", "limit": 1.5, "unit": "tokens"},
            "limit",
            "whole number",
        ),
        (
            "/admin/v1/budgets",
            {"scope": "team:a", "limit": 5, "colour": "red"},
            "colour",
            "Extra inputs",
        ),
        ("/admin/v1/limits", {"scope": "key:abc", "rpm": 1.5}, "rpm", "integer"),
        ("/admin/v1/limits", {"scope": "key:abc", "rpm": -3}, "rpm", "greater than"),
        ("/admin/v1/keys", {"team": "research"}, "org", "needs an org"),
    ],
)
async def test_bad_bodies_get_400_naming_the_field(
    root: Admin, path: str, body: dict[str, object], field: str, words: str
) -> None:
    method = "POST" if path.endswith("keys") else "PUT"
    r = await root.call(method, path, body)
    assert r.status == 400, r.body
    assert r.body["error"]["param"] == field
    assert r.message.startswith(f"{field}:") and words in r.message, r.message


async def test_transfer_and_limit_bodies_and_non_json(root: Admin) -> None:
    r = await root.post("/admin/v1/budgets/transfer", {"to": "team:a", "amount": 1})
    assert r.status == 400 and r.body["error"]["param"] == "from"
    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:a", "to": "team:b", "amount": 0}
    )
    assert r.status == 400 and r.message.startswith("amount:")
    r = await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:a", "to": "team:b", "amount": 1}
    )
    assert r.status == 404 and "no usd budget on team:a" in r.message
    r = await root.put("/admin/v1/limits", {"scope": "team:a"})
    assert r.status == 400 and "rpm and/or tpm" in r.message
    r = await root.call("PUT", "/admin/v1/budgets", raw=b"{not json")
    assert r.status == 400 and "not valid JSON" in r.message
    r = await root.call("PUT", "/admin/v1/budgets", raw=b"")
    assert r.status == 400 and "empty" in r.message
    r = await root.put("/admin/v1/budgets", [1, 2])
    assert r.status == 400 and "invalid body" in r.message
    r = await root.call("PUT", "/admin/v1/budgets", raw=b"{" + b" " * 70_000 + b"}")
    assert r.status == 413
    r = await root.delete("/admin/v1/budgets/nonsense")
    assert r.status == 400 and r.body["error"]["param"] == "scope"
    r = await root.get("/admin/v1/budgets/audit", limit="0")
    assert r.status == 400 and r.body["error"]["param"] == "limit"
