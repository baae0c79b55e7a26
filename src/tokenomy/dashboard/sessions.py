"""Dashboard sign-in sessions: server-side, expiring, revoked on logout.

Signing in takes an admin key (``tokenomy.admin.authenticate``: global or team admin). The
browser gets a random token in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS);
the database keeps only its SHA-256, the admin key it stands for and when it expires, so
every replica and worker sees the same sessions, logout ends a session everywhere, and
revoking the admin key ends its sessions on the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tokenomy.admin import AdminPrincipal, authenticate
from tokenomy.clock import now_ms
from tokenomy.ledger.store import Store

COOKIE = "tokenomy_session"
SESSION_TTL_MS = 8 * 3_600_000  # a working day; signing in again is one paste


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: the admin principal and when the session ends."""

    who: AdminPrincipal
    expires_ms: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(store: Store, admin_secret: str, ttl_ms: int = SESSION_TTL_MS) -> tuple[str, Session]:
    """Check the admin key and open a session: (cookie token, session).

    Raises:
        AuthenticationError: the key is missing, unknown, revoked or not an admin key.
    """
    who = authenticate(store, admin_secret)
    token = secrets.token_urlsafe(32)
    now = now_ms()
    with store.transaction() as cur:
        # Expired sessions are dropped here, where sessions are made: no sweeper needed.
        cur.execute(store.sql("DELETE FROM dashboard_sessions WHERE expires_ms <= ?"), (now,))
        cur.execute(
            store.sql("INSERT INTO dashboard_sessions VALUES (?, ?, ?, ?)"),
            (_hash(token), who.key_id, now, now + ttl_ms),
        )
    return token, Session(who, now + ttl_ms)


def lookup(store: Store, token: str | None) -> Session | None:
    """The live session of ``token``; None when absent, expired, logged out or revoked."""
    if not token or len(token) > 100 or not token.isascii():
        return None
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "SELECT k.key_id, k.org, k.team, k.revoked_ms, s.expires_ms "
                "FROM dashboard_sessions s JOIN admin_keys k ON k.key_id = s.admin_key_id "
                "WHERE s.token_hash = ? AND s.expires_ms > ?"
            ),
            (_hash(token), now_ms()),
        )
        row = cur.fetchone()
    if row is None:
        return None
    key_id, org, team, revoked_ms, expires_ms = row
    if revoked_ms is not None or (team is not None and org is None):
        return None  # revoked, or a team key without an org (authenticate refuses those)
    return Session(AdminPrincipal(key_id, team, org if team is not None else None), expires_ms)


def sign_out(store: Store, token: str | None) -> None:
    """End the session of ``token`` (on every replica: it is deleted from the database)."""
    if not token or len(token) > 100:
        return
    with store.transaction() as cur:
        cur.execute(
            store.sql("DELETE FROM dashboard_sessions WHERE token_hash = ?"), (_hash(token),)
        )


__all__ = ["COOKIE", "SESSION_TTL_MS", "Session", "lookup", "sign_in"]
