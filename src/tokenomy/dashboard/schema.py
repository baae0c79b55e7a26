"""The dashboard's table: sign-in sessions (``tokenomy.dashboard.sessions``)."""

from __future__ import annotations

from tokenomy.sql import Migration, MigrationSet

DASHBOARD_MIGRATIONS = MigrationSet(
    "dashboard",
    (
        Migration.same(
            "dashboard.0001_sessions",
            """CREATE TABLE dashboard_sessions (
            token_hash TEXT PRIMARY KEY,
            admin_key_id TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL
        )""",
            "CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_ms)",
        ),
    ),
)

__all__ = ["DASHBOARD_MIGRATIONS"]
