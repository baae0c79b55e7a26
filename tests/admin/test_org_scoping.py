"""A team admin is bound to (org, team): two orgs may both have a team ``t1`` (defect 9).

The team admin of acme's ``t1`` used to see globex's ``t1`` keys and usage and could create
keys in globex. Every admin query now filters on the org as well as the team.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.admin.conftest import Admin, Server
from tests.builders import usage_event
from tokenomy.admin.keys import authenticate, create_admin_key, list_admin_keys
from tokenomy.admin.schema import ADMIN_MIGRATIONS
from tokenomy.errors import AuthenticationError
from tokenomy.events import Usage
from tokenomy.ledger.store import ApiKey, Store

pytestmark = pytest.mark.timeout(60)


class TwoOrgs:
    def __init__(self, server: Server, root: Admin) -> None:
        self.server, self.root = server, root
        store = server.store
        self.acme: ApiKey = store.create_key(org="acme", team="t1", user="ann")[0]
        self.globex: ApiKey = store.create_key(org="globex", team="t1", user="gus")[0]
        self.admin: Admin = server.admin(team="t1", org="acme")


@pytest.fixture
def orgs(server: Server, root: Admin) -> TwoOrgs:
    return TwoOrgs(server, root)


async def test_keys_are_those_of_the_admins_org(orgs: TwoOrgs) -> None:
    ta = orgs.admin
    r = await ta.get("/admin/v1/keys")
    assert [k["key_id"] for k in r.body["data"]] == [orgs.acme.key_id]

    r = await ta.post("/admin/v1/keys", {"name": "ci"})
    assert r.status == 201 and (r.body["org"], r.body["team"]) == ("acme", "t1")
    r = await ta.post("/admin/v1/keys", {"org": "globex", "name": "sneaky"})
    assert r.status == 403 and r.body["error"]["param"] == "org"
    assert [k.key_id for k in orgs.server.store.list_keys() if k.org == "globex"] == [
        orgs.globex.key_id
    ]

    r = await ta.delete(f"/admin/v1/keys/{orgs.globex.key_id}")
    assert r.status == 403 and "not one of them" in r.message
    assert orgs.server.store.list_keys(include_revoked=False, team="t1")[0].revoked_ms is None
    assert (await ta.delete(f"/admin/v1/keys/{orgs.acme.key_id}")).status == 200


async def test_usage_is_that_of_the_admins_org_and_team(orgs: TwoOrgs) -> None:
    ts = int(datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp() * 1000)
    orgs.server.store.insert_events(
        [
            usage_event(
                i,
                ts_ms=ts,
                org=org,
                team="t1",
                user=user,
                key_id=key.key_id,
                usage=Usage(input_tokens=100, output_tokens=10),
                cost_nanos=7,
            )
            for i, (org, user, key) in enumerate(
                [
                    ("acme", "ann", orgs.acme),
                    ("globex", "gus", orgs.globex),
                    ("globex", "gus", orgs.globex),
                ]
            )
        ]
    )
    ta = orgs.admin
    r = await ta.get("/admin/v1/usage", by="org,team,user")
    assert [(x["org"], x["team"], x["user"], x["requests"]) for x in r.body["data"]] == [
        ("acme", "t1", "ann", 1)
    ]
    r = await ta.get("/admin/v1/usage", where=f"key={orgs.globex.key_id}")
    assert r.body["data"] == []
    r = await ta.get("/admin/v1/usage", where="org=globex")
    assert r.status == 403 and r.body["error"]["param"] == "where"
    assert (await ta.get("/admin/v1/usage", where="org=acme")).body["data"][0]["requests"] == 1
    assert (await orgs.root.get("/admin/v1/usage")).body["data"][0]["requests"] == 3


async def test_budgets_are_those_of_the_admins_org_and_team(orgs: TwoOrgs) -> None:
    root, ta = orgs.root, orgs.admin
    mine, theirs = f"key:{orgs.acme.key_id}", f"key:{orgs.globex.key_id}"
    for scope in ("team:t1", mine, theirs):
        assert (await root.put("/admin/v1/budgets", {"scope": scope, "limit": 10})).status == 200
        assert (await root.put("/admin/v1/limits", {"scope": scope, "rpm": 60})).status == 200

    # team:t1 also limits globex's t1 (budget scopes name the team alone): global admins only.
    for path in ("/admin/v1/budgets", "/admin/v1/limits"):
        assert [row["scope"] for row in (await ta.get(path)).body["data"]] == [mine]
    for scope in ("team:t1", theirs):
        r = await ta.put("/admin/v1/budgets", {"scope": scope, "limit": 1})
        assert r.status == 403 and "unless another org" in r.message, r.body
        assert (await ta.put("/admin/v1/limits", {"scope": scope, "rpm": 1})).status == 403
        assert (await ta.delete(f"/admin/v1/budgets/{scope}")).status == 403
    r = await ta.post("/admin/v1/budgets/transfer", {"from": theirs, "to": mine, "amount": 1})
    assert r.status == 403
    r = await ta.put("/admin/v1/budgets", {"scope": mine, "limit": 20})
    assert r.status == 200 and r.body["limit"] == 20


async def test_team_scope_is_the_admins_while_no_other_org_has_the_team(
    server: Server, root: Admin
) -> None:
    server.store.create_key(org="acme", team="solo")
    solo = server.admin(team="solo", org="acme")
    assert (await solo.put("/admin/v1/budgets", {"scope": "team:solo", "limit": 5})).status == 200
    # Once another org has a team of that name, team:solo would reach into it: refused.
    server.store.create_key(org="globex", team="solo")
    assert (await solo.put("/admin/v1/budgets", {"scope": "team:solo", "limit": 6})).status == 403
    assert (await solo.get("/admin/v1/budgets")).body["data"] == []


def _legacy_key(store: Store, team: str) -> str:
    """A team admin key as made before admin keys had an org."""
    record, secret = create_admin_key(store, org="x", team=team, name="legacy")
    with store.transaction() as cur:
        cur.execute(
            store.sql("UPDATE admin_keys SET org = NULL WHERE key_id = ?"), (record.key_id,)
        )
    return secret


def test_legacy_team_keys_are_bound_to_their_teams_only_org_or_refused(store: Store) -> None:
    store.create_key(org="acme", team="t1")
    store.create_key(org="globex", team="t1")
    store.create_key(org="acme", team="solo")
    store.create_key(org="acme", team="solo")  # two keys, one org
    ambiguous, single, orphan = (_legacy_key(store, t) for t in ("t1", "solo", "nobody"))
    with pytest.raises(AuthenticationError, match="re-create it"):
        authenticate(store, single)

    # The migration's backfill binds a key whose team is in exactly one org to that org.
    backfill = (ADMIN_MIGRATIONS["0007_admin_keys_org"].statements(store.dialect) or ())[1]
    with store.transaction() as cur:
        cur.execute(backfill)
    who = authenticate(store, single)
    assert (who.org, who.team) == ("acme", "solo")
    for secret in (ambiguous, orphan):
        with pytest.raises(AuthenticationError, match="--org ORG --team TEAM"):
            authenticate(store, secret)
    assert {(k.org, k.team) for k in list_admin_keys(store)} == {
        (None, "t1"),
        ("acme", "solo"),
        (None, "nobody"),
    }
