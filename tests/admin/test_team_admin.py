"""A team-admin key sees and changes only its own team (the rule in tokenomy.admin.access)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.admin.conftest import Admin, Server
from tests.builders import usage_event
from tokenomy.events import Usage
from tokenomy.ledger.store import ApiKey

pytestmark = pytest.mark.timeout(60)


class Teams:
    def __init__(self, server: Server, root: Admin) -> None:
        self.server, self.root = server, root
        self.research: Admin = server.admin(team="research")
        self.r_key: ApiKey = server.store.create_key(org="acme", team="research")[0]
        self.s_key: ApiKey = server.store.create_key(org="acme", team="support")[0]


@pytest.fixture
def teams(server: Server, root: Admin) -> Teams:
    return Teams(server, root)


async def test_keys_are_limited_to_the_team(teams: Teams) -> None:
    ra = teams.research
    r = await ra.get("/admin/v1/keys")
    assert [k["key_id"] for k in r.body["data"]] == [teams.r_key.key_id]

    # Creating forces the team, and the org is the team's own.
    r = await ra.post("/admin/v1/keys", {"user": "bob", "name": "ci"})
    assert r.status == 201, r.body
    assert (r.body["team"], r.body["org"], r.body["user"]) == ("research", "acme", "bob")
    r = await ra.post("/admin/v1/keys", {"team": "research", "org": "acme"})
    assert r.status == 201 and r.body["team"] == "research"

    r = await ra.post("/admin/v1/keys", {"team": "support"})
    assert r.status == 403 and r.body["error"]["code"] == "permission_denied"
    assert "creates keys of team 'research' only" in r.message
    # A made-up org would slip out from under org: budgets.
    r = await ra.post("/admin/v1/keys", {"org": "shadow-corp"})
    assert r.status == 403 and r.body["error"]["param"] == "org"

    # Another team's key: refused, and the same answer as for a key that does not exist.
    r = await ra.delete(f"/admin/v1/keys/{teams.s_key.key_id}")
    assert r.status == 403 and "not one of them" in r.message
    r_missing = await ra.delete("/admin/v1/keys/000000000000")
    assert r_missing.status == 403
    assert r_missing.message.replace("000000000000", teams.s_key.key_id) == r.message
    assert all(k.revoked_ms is None for k in teams.server.store.list_keys(team="support"))

    r = await ra.delete(f"/admin/v1/keys/{teams.r_key.key_id}")
    assert r.status == 200


async def test_a_team_admin_creates_keys_only_in_its_own_org(server: Server) -> None:
    lonely = server.admin(team="new-team", org="acme")
    r = await lonely.post("/admin/v1/keys", {"org": "shadow-corp"})
    assert r.status == 403 and r.body["error"]["param"] == "org"
    assert server.store.list_keys(team="new-team") == []
    # Its first key goes to its own org, with or without naming it.
    r = await lonely.post("/admin/v1/keys", {})
    assert r.status == 201 and (r.body["org"], r.body["team"]) == ("acme", "new-team")


async def test_budgets_and_limits_are_limited_to_team_and_its_keys(teams: Teams) -> None:
    root, ra = teams.root, teams.research
    for scope in (
        "team:research",
        "team:support",
        "org:acme",
        "user:alice",
        f"key:{teams.r_key.key_id}",
        f"key:{teams.s_key.key_id}",
    ):
        assert (await root.put("/admin/v1/budgets", {"scope": scope, "limit": 10})).status == 200
        assert (await root.put("/admin/v1/limits", {"scope": scope, "rpm": 60})).status == 200
    mine = {"team:research", f"key:{teams.r_key.key_id}"}

    for path in ("/admin/v1/budgets", "/admin/v1/limits"):
        assert {row["scope"] for row in (await ra.get(path)).body["data"]} == mine
        assert len((await root.get(path)).body["data"]) == 6

    for scope in (
        "team:support",
        "org:acme",
        "user:alice",
        "agent:planner",
        f"key:{teams.s_key.key_id}",
        "key:000000000000",
    ):
        r = await ra.put("/admin/v1/budgets", {"scope": scope, "limit": 1})
        assert r.status == 403, (scope, r.body)
        assert r.body["error"]["param"] == "scope"
        assert "on team:research unless" in r.message and scope in r.message
        assert (await ra.put("/admin/v1/limits", {"scope": scope, "tpm": 1})).status == 403
        assert (await ra.delete(f"/admin/v1/budgets/{scope}")).status == 403
        assert (await ra.delete(f"/admin/v1/limits/{scope}")).status == 403
    # Nothing of the other team changed.
    support = [
        r
        for r in (await root.get("/admin/v1/budgets")).body["data"]
        if r["scope"] == "team:support"
    ]
    assert support[0]["limit"] == 10

    for scope in sorted(mine):
        r = await ra.put("/admin/v1/budgets", {"scope": scope, "limit": 20})
        assert r.status == 200 and r.body["limit"] == 20
        assert (await ra.put("/admin/v1/limits", {"scope": scope, "rpm": 5})).status == 200
    r = await ra.post(
        "/admin/v1/budgets/transfer",
        {"from": "team:research", "to": f"key:{teams.r_key.key_id}", "amount": 5},
    )
    assert r.status == 200 and r.body["to"]["limit"] == 25
    r = await ra.post(
        "/admin/v1/budgets/transfer", {"from": "team:support", "to": "team:research", "amount": 5}
    )
    assert r.status == 403 and "team:support" in r.message
    r = await ra.post(
        "/admin/v1/budgets/transfer", {"from": "team:research", "to": "team:support", "amount": 5}
    )
    assert r.status == 403
    assert (await ra.delete(f"/admin/v1/budgets/key:{teams.r_key.key_id}")).status == 200
    assert (await ra.delete("/admin/v1/limits/team:research")).status == 200


async def test_audit_shows_only_the_team_and_hides_counterparts(teams: Teams) -> None:
    root, ra = teams.root, teams.research
    for scope in ("team:research", "team:support"):
        await root.put("/admin/v1/budgets", {"scope": scope, "limit": 10})
    # Many changes on another team must not push the team's entries out of its page.
    for i in range(30):
        await root.put("/admin/v1/budgets", {"scope": "team:support", "limit": 10 + i})
    await root.post(
        "/admin/v1/budgets/transfer", {"from": "team:support", "to": "team:research", "amount": 3}
    )

    r = await ra.get("/admin/v1/budgets/audit", limit="5")
    entries = r.body["data"]
    assert [e["action"] for e in entries] == ["transfer_in", "set"]
    assert all(e["budget_id"] == "budget/team:research/usd" for e in entries)
    assert entries[0]["detail"]["from"] == "(another team)"
    assert entries[0]["detail"]["to"] == "team:research"
    everything = (await root.get("/admin/v1/budgets/audit", limit="1000")).body["data"]
    assert len(everything) == 34


async def test_usage_is_forced_to_the_team(teams: Teams) -> None:
    ts = int(datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp() * 1000)
    events = [
        usage_event(
            i,
            ts_ms=ts,
            org="acme",
            team=team,
            user="alice",
            key_id=key,
            usage=Usage(input_tokens=100, output_tokens=10),
            cost_nanos=7,
        )
        for i, (team, key) in enumerate(
            [
                ("research", teams.r_key.key_id),
                ("support", teams.s_key.key_id),
                ("support", teams.s_key.key_id),
            ]
        )
    ]
    teams.server.store.insert_events(events)
    ra = teams.research
    r = await ra.get("/admin/v1/usage", by="team,user")
    assert [(x["team"], x["requests"]) for x in r.body["data"]] == [("research", 1)]
    r = await ra.get("/admin/v1/usage")
    assert r.body["data"][0]["requests"] == 1
    # Filtering on another team's key finds nothing rather than the other team's usage.
    r = await ra.get("/admin/v1/usage", where=f"key={teams.s_key.key_id}")
    assert r.body["data"] == []
    r = await ra.get("/admin/v1/usage", where="team=support")
    assert r.status == 403 and "team admin of 'research'" in r.message
    assert r.body["error"]["param"] == "where"
    r = await ra.get("/admin/v1/usage", where="team=research")
    assert r.status == 200 and r.body["data"][0]["requests"] == 1
    r = await teams.root.get("/admin/v1/usage")
    assert r.body["data"][0]["requests"] == 3
