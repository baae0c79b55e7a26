"""The tasks' tables: outcomes, shredder findings, and per-task cap accounting.

Applied after the ledger's, budgets' and admin keys' sets (``tokenomy.database``). A task is
``(org, task)``: the calls of one org carrying the same task id. Money is nano-USD.
"""

from __future__ import annotations

from tokenomy.sql import Migration, MigrationSet

TASK_MIGRATIONS = MigrationSet(
    "tasks",
    (
        Migration.same(
            "tasks.0001_tasks",
            """CREATE TABLE task_outcomes (
            org TEXT NOT NULL,
            task TEXT NOT NULL,
            team TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            value_nanos BIGINT,
            metrics TEXT NOT NULL DEFAULT '{}',
            note TEXT NOT NULL DEFAULT '',
            outcome_id TEXT NOT NULL DEFAULT '',
            key_id TEXT NOT NULL DEFAULT '',
            recorded_ms BIGINT NOT NULL,
            PRIMARY KEY (org, task)
        )""",
            """CREATE TABLE task_findings (
            org TEXT NOT NULL,
            task TEXT NOT NULL,
            kind TEXT NOT NULL,
            team TEXT NOT NULL DEFAULT '',
            agent TEXT NOT NULL DEFAULT '',
            ts_ms BIGINT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '',
            tokens BIGINT NOT NULL DEFAULT 0,
            cost_nanos BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (org, task, kind)
        )""",
            "CREATE INDEX task_findings_ts ON task_findings (ts_ms)",
            # Per-task caps across replicas: what each task has spent (settled), and one row
            # per call in flight holding its worst case (see tasks/caps.py).
            """CREATE TABLE task_cap_usage (
            org TEXT NOT NULL,
            task TEXT NOT NULL,
            first_ms BIGINT NOT NULL,
            calls BIGINT NOT NULL DEFAULT 0,
            tokens BIGINT NOT NULL DEFAULT 0,
            cost_nanos BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (org, task)
        )""",
            """CREATE TABLE task_cap_holds (
            org TEXT NOT NULL,
            task TEXT NOT NULL,
            request_id TEXT NOT NULL,
            tokens BIGINT NOT NULL,
            cost_nanos BIGINT NOT NULL,
            ts_ms BIGINT NOT NULL,
            PRIMARY KEY (org, task, request_id)
        )""",
            # Outcomes name a task; finding its team must not scan the whole ledger.
            "CREATE INDEX usage_events_org_task ON usage_events (org, task)",
        ),
    ),
)

__all__ = ["TASK_MIGRATIONS"]
