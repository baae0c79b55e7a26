"""The budgets' tables: definitions, spend per period, leases, alerts fired, audit trail.

Applied by ``tokenomy.sql.apply_migrations`` after the ledger's set (the gateway and the CLI
open the database with ``tokenomy.database.open_database``). ``0004_budgets`` once also
created ``admin_keys``; admin keys now declare that table in ``tokenomy.admin.schema``.
"""

from __future__ import annotations

from tokenomy.sql import Migration, MigrationSet

BUDGET_MIGRATIONS = MigrationSet(
    "budgets",
    (
        Migration.same(
            "0004_budgets",
            """CREATE TABLE budgets (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            unit TEXT NOT NULL,
            limit_amount BIGINT NOT NULL,
            period TEXT NOT NULL,
            hard SMALLINT NOT NULL,
            alerts TEXT NOT NULL DEFAULT '',
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL,
            UNIQUE (kind, scope, unit)
        )""",
            """CREATE TABLE budget_usage (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            spent BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (budget_id, period_start_ms)
        )""",
            """CREATE TABLE budget_leases (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            holder TEXT NOT NULL,
            amount BIGINT NOT NULL,
            heartbeat_ms BIGINT NOT NULL,
            PRIMARY KEY (budget_id, period_start_ms, holder)
        )""",
            """CREATE TABLE budget_alerts (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            threshold TEXT NOT NULL,
            fired_ms BIGINT NOT NULL,
            spent BIGINT NOT NULL,
            PRIMARY KEY (budget_id, period_start_ms, threshold)
        )""",
            """CREATE TABLE budget_audit (
            ts_ms BIGINT NOT NULL,
            action TEXT NOT NULL,
            budget_id TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )""",
            "CREATE INDEX budget_audit_ts ON budget_audit (ts_ms)",
        ),
        # Lease fencing: one row per (holder, epoch), so a holder whose lease went stale
        # settles the old epoch out while leasing under a new one; and a lease can never be
        # negative. Rebuilt rather than altered: SQLite cannot add a CHECK to a table.
        Migration.same(
            "0006_budget_lease_epochs",
            """CREATE TABLE budget_leases_v2 (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            holder TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            amount BIGINT NOT NULL CONSTRAINT budget_leases_amount_nonnegative
                CHECK (amount >= 0),
            heartbeat_ms BIGINT NOT NULL,
            PRIMARY KEY (budget_id, period_start_ms, holder, epoch)
        )""",
            "INSERT INTO budget_leases_v2"
            " (budget_id, period_start_ms, holder, epoch, amount, heartbeat_ms)"
            " SELECT budget_id, period_start_ms, holder, 1,"
            " CASE WHEN amount < 0 THEN 0 ELSE amount END, heartbeat_ms FROM budget_leases",
            "DROP TABLE budget_leases",
            "ALTER TABLE budget_leases_v2 RENAME TO budget_leases",
        ),
    ),
)

__all__ = ["BUDGET_MIGRATIONS"]
