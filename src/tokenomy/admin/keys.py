"""Admin keys: the credentials of the admin REST API, kept apart from gateway API keys.

An admin key is either *global* (``team`` is None: sees and changes everything) or bound
to one team of one org (sees and changes only that team; the rule is in
``tokenomy.admin.access``). Team names are unique only within an org, so a team admin key
always names both: ``tokenomy admin create-key --org acme --team research``.
Secrets look like ``tka-<key id>-<random>``; only their SHA-256 is stored, like API keys.

Team admin keys created before keys carried an org were bound by migration
``0007_admin_keys_org`` to the one org whose API keys use their team. Where the team was
in several orgs (or none) the key has no org and is refused (401, saying to re-create it):
guessing its org could hand one org's team to another's admin.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tokenomy.budgets.model import check_name
from tokenomy.clock import now_ms
from tokenomy.errors import AuthenticationError
from tokenomy.ledger.store import Store, hash_secret

ADMIN_KEY_PREFIX = "tka"

# A 401 tells clients which scheme to use (RFC 9110 §11.6.1).
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tokenomy-admin"'}


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who is calling the admin API: the admin key and the (org, team) it is bound to.

    Both are None for a global admin; both are set for a team admin.
    """

    key_id: str
    team: str | None
    org: str | None = None

    @property
    def is_global(self) -> bool:
        return self.team is None

    @property
    def actor(self) -> str:
        """How this principal is named in the budget audit trail."""
        return f"admin:{self.key_id}"


@dataclass(frozen=True, slots=True)
class AdminKey:
    """An admin key as stored: never the secret, only its hash and a display prefix."""

    key_id: str
    prefix: str
    name: str
    team: str | None
    created_ms: int
    revoked_ms: int | None
    org: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "name": self.name,
            "org": self.org,
            "team": self.team,
            "created_ms": self.created_ms,
            "revoked": self.revoked_ms is not None,
            "revoked_ms": self.revoked_ms,
        }


def create_admin_key(
    store: Store, *, org: str | None = None, team: str | None = None, name: str = ""
) -> tuple[AdminKey, str]:
    """Create an admin key: global when ``team`` is None, else bound to (``org``, ``team``).

    The secret is returned only here, once; the database keeps its hash.
    """
    if team is not None and not team.strip():
        raise ValueError("a team admin key needs a team name; omit --team for a global key")
    if team is not None and (org is None or not org.strip()):
        raise ValueError(
            "a team admin key needs the team's org too (--org O --team T): team names are "
            "unique only within an org"
        )
    if team is None and org is not None:
        raise ValueError(
            "--org binds a team admin key: give --team too, or neither for a global key"
        )
    if org is not None and team is not None:
        check_name("org", org)
        check_name("team", team)
    check_name("name", name)
    key_id = secrets.token_hex(6)
    secret = f"{ADMIN_KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(24)}"
    record = AdminKey(
        key_id=key_id,
        prefix=secret[: len(ADMIN_KEY_PREFIX) + 1 + len(key_id) + 5] + "…",
        name=name,
        team=team,
        created_ms=now_ms(),
        revoked_ms=None,
        org=org,
    )
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "INSERT INTO admin_keys (key_id, secret_hash, prefix, name, org, team,"
                " created_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
            ),
            (key_id, hash_secret(secret), record.prefix, name, org, team, record.created_ms),
        )
    return record, secret


def list_admin_keys(store: Store, include_revoked: bool = True) -> list[AdminKey]:
    """Admin keys, oldest first (never their secrets)."""
    sql = "SELECT key_id, prefix, name, team, created_ms, revoked_ms, org FROM admin_keys"
    if not include_revoked:
        sql += " WHERE revoked_ms IS NULL"
    with store.transaction() as cur:
        cur.execute(sql + " ORDER BY created_ms, key_id")
        return [AdminKey(*r) for r in cur.fetchall()]


def revoke_admin_key(store: Store, key_id: str) -> bool:
    """Revoke an admin key at once; False when no active admin key has that id."""
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "UPDATE admin_keys SET revoked_ms = ? WHERE key_id = ? AND revoked_ms IS NULL"
            ),
            (now_ms(), key_id),
        )
        return bool(cur.rowcount)


def authenticate(store: Store, secret: str | None) -> AdminPrincipal:
    """Admin secret → principal, or ``AuthenticationError`` (401) saying what is wrong.

    Looked up in the database on every call: admin traffic is rare, and this way a
    revocation takes effect on the very next request, on every replica.
    """
    if not secret:
        raise AuthenticationError(
            "Missing admin key. Send it as 'Authorization: Bearer tka-...'; create one with "
            "`tokenomy admin create-key`.",
            headers=_CHALLENGE,
        )
    if not secret.startswith(ADMIN_KEY_PREFIX + "-"):
        raise AuthenticationError(
            "Not an admin key: the admin API takes an admin key (tka-...) from "
            "`tokenomy admin create-key`, not a gateway API key.",
            headers=_CHALLENGE,
        )
    if len(secret) > 200 or not secret.isascii():  # no real key; nothing worth hashing
        raise AuthenticationError("Invalid admin key.", headers=_CHALLENGE)
    with store.transaction() as cur:
        cur.execute(
            store.sql("SELECT key_id, org, team, revoked_ms FROM admin_keys WHERE secret_hash = ?"),
            (hash_secret(secret),),
        )
        row = cur.fetchone()
    if row is None:
        raise AuthenticationError("Invalid admin key.", headers=_CHALLENGE)
    key_id, org, team, revoked_ms = row
    if revoked_ms is not None:
        raise AuthenticationError("This admin key has been revoked.", headers=_CHALLENGE)
    if team is not None and org is None:
        raise AuthenticationError(
            f"This team admin key predates org-bound admin keys and team {team!r} is not in "
            "exactly one org, so its org is unknown. Ask a global admin to re-create it with "
            "`tokenomy admin create-key --org ORG --team TEAM`.",
            headers=_CHALLENGE,
        )
    return AdminPrincipal(key_id, team, org if team is not None else None)
