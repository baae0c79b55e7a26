"""Admin key storage and the `tokenomy admin` commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tokenomy.admin.keys import (
    authenticate,
    create_admin_key,
    list_admin_keys,
    revoke_admin_key,
)
from tokenomy.cli.admin import app
from tokenomy.errors import AuthenticationError
from tokenomy.ledger.store import Store, hash_secret


def test_create_authenticate_revoke(store: Store) -> None:
    glob, g_secret = create_admin_key(store, name="ops")
    team, t_secret = create_admin_key(store, org="acme", team="research")
    assert g_secret.startswith(f"tka-{glob.key_id}-") and len(g_secret) > 30
    assert glob.prefix.startswith(f"tka-{glob.key_id}") and g_secret not in glob.prefix

    assert authenticate(store, g_secret).is_global
    who = authenticate(store, t_secret)
    assert (who.key_id, who.org, who.team, who.is_global) == (
        team.key_id,
        "acme",
        "research",
        False,
    )

    # Only the hash is stored.
    with store.transaction() as cur:
        cur.execute("SELECT secret_hash FROM admin_keys ORDER BY created_ms, key_id")
        hashes = {r[0] for r in cur.fetchall()}
    assert hashes == {hash_secret(g_secret), hash_secret(t_secret)}

    assert {k.team for k in list_admin_keys(store)} == {None, "research"}
    assert revoke_admin_key(store, team.key_id)
    assert not revoke_admin_key(store, team.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(store, t_secret)
    assert [k.key_id for k in list_admin_keys(store, include_revoked=False)] == [glob.key_id]
    with pytest.raises(AuthenticationError, match="Invalid"):
        authenticate(store, g_secret + "x")
    with pytest.raises(AuthenticationError, match="Missing"):
        authenticate(store, None)
    with pytest.raises(ValueError, match="team name"):
        create_admin_key(store, org="acme", team=" ")
    # Team names are unique only within an org: a team admin key names both.
    with pytest.raises(ValueError, match="org too"):
        create_admin_key(store, team="research")
    with pytest.raises(ValueError, match="give --team too"):
        create_admin_key(store, org="acme")


def test_cli_create_list_revoke(db_url: str) -> None:
    runner = CliRunner()
    team_key = ["create-key", "--org", "acme", "--team", "research", "--name", "lead"]
    r = runner.invoke(app, [*team_key, "--json", "--db", db_url])
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    assert (created["org"], created["team"]) == ("acme", "research")
    assert created["secret"].startswith("tka-")
    r = runner.invoke(app, ["create-key", "--team", "research", "--db", db_url])
    assert r.exit_code == 1 and "--org O --team T" in r.output

    r = runner.invoke(app, ["create-key", "--db", db_url])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("tka-") and "global" in r.stdout

    r = runner.invoke(app, ["list-keys", "--format", "json", "--db", db_url])
    rows = json.loads(r.stdout)
    assert {row["team"] for row in rows} == {"research", None}
    assert all("secret" not in row and secret not in r.stdout for row in rows)
    r = runner.invoke(app, ["list-keys", "--db", db_url])
    assert r.exit_code == 0 and "(all teams)" in r.stdout

    r = runner.invoke(app, ["revoke-key", created["key_id"], "--db", db_url])
    assert r.exit_code == 0 and created["key_id"] in r.stdout
    r = runner.invoke(app, ["revoke-key", created["key_id"], "--db", db_url])
    assert r.exit_code == 1


def test_every_command_has_an_example() -> None:
    for cmd in app.registered_commands:
        assert cmd.callback is not None and "Example: tokenomy admin " in (
            cmd.callback.__doc__ or ""
        ), cmd.name
