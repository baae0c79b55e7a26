"""The admin keys' table: the credentials of the admin REST API.

Applied after the ledger's set (``0007_admin_keys_org`` reads the ledger's ``api_keys``) by
``tokenomy.sql.apply_migrations``; the gateway and the CLI open the database with
``tokenomy.database.open_database``.
"""

from __future__ import annotations

from tokenomy.sql import Migration, MigrationSet

ADMIN_MIGRATIONS = MigrationSet(
    "admin",
    (
        # Until admin keys owned their table, ``0004_budgets`` created it: a database made
        # then already has it, hence IF NOT EXISTS (same columns as that first version).
        Migration.same(
            "admin.0001_admin_keys",
            """CREATE TABLE IF NOT EXISTS admin_keys (
            key_id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            team TEXT,
            created_ms BIGINT NOT NULL,
            revoked_ms BIGINT
        )""",
        ),
        # Team admin keys are bound to (org, team): team names are unique only within an
        # org. A key made before this is bound to the one org whose API keys use its team;
        # when the team is in several orgs (or none) org stays NULL and the key is refused
        # until re-created with `tokenomy admin create-key --org O --team T`.
        Migration.same(
            "0007_admin_keys_org",
            "ALTER TABLE admin_keys ADD COLUMN org TEXT",
            "UPDATE admin_keys SET org = (SELECT MIN(k.org) FROM api_keys k"
            " WHERE k.team = admin_keys.team) WHERE team IS NOT NULL AND"
            " (SELECT COUNT(DISTINCT k.org) FROM api_keys k WHERE k.team = admin_keys.team) = 1",
        ),
    ),
)

__all__ = ["ADMIN_MIGRATIONS"]
