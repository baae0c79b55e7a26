"""Component migration sets over one database, and databases made before the split.

``tests/ledger/data/migrations_before_components.json`` is the migration list of the code
before each component owned its tables (``SQLITE_MIGRATIONS`` / ``POSTGRES_MIGRATIONS`` of
``ledger/schema.py`` at that commit, dumped verbatim): the databases users have.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.postgres import fresh_database
from tokenomy.admin import authenticate, create_admin_key, list_admin_keys
from tokenomy.admin.schema import ADMIN_MIGRATIONS
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.budgets.schema import BUDGET_MIGRATIONS
from tokenomy.database import ALL_MIGRATIONS, open_database
from tokenomy.ledger import open_store
from tokenomy.ledger.schema import LEDGER_MIGRATIONS
from tokenomy.ledger.store import Store
from tokenomy.sql import Migration, MigrationSet, apply_migrations

_OLD: dict[str, list[tuple[str, list[str]]]] = json.loads(
    (Path(__file__).parent / "ledger" / "data" / "migrations_before_components.json").read_text()
)


def _old_database(url: str, upto: set[str] | None = None) -> Store:
    """A database as the code before the split made it (only ``upto`` migrations, if given)."""
    store = open_store(url, migrate=False)
    with store.transaction() as cur:
        cur.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)")
        for name, statements in _OLD[store.dialect]:
            if upto is not None and name not in upto:
                continue
            for stmt in statements:
                cur.execute(stmt)
            cur.execute(store.sql("INSERT INTO _migrations VALUES (?, ?)"), (name, 1))
    return store


def _columns(store: Store) -> dict[str, list[str]]:
    """Every table's column names (sorted), the bookkeeping table left out."""
    with store.transaction() as cur:
        if store.dialect == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = [r[0] for r in cur.fetchall() if not r[0].startswith(("sqlite_", "_"))]
            out = {}
            for t in tables:
                cur.execute(f"PRAGMA table_info({t})")
                out[t] = sorted(r[1] for r in cur.fetchall())
            return out
        cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name <> '_migrations'"
        )
        cols: dict[str, list[str]] = {}
        for t, c in cur.fetchall():
            cols.setdefault(t, []).append(c)
        return {t: sorted(c) for t, c in cols.items()}


def _old_names(dialect: str) -> set[str]:
    return {name for name, _ in _OLD[dialect]}


def test_each_component_owns_its_tables_and_the_names_of_old_migrations_are_kept() -> None:
    ledger, budgets, admin = (set(s.names) for s in ALL_MIGRATIONS[:3])
    assert [s.component for s in ALL_MIGRATIONS][:3] == ["ledger", "budgets", "admin"]
    old = _old_names("sqlite") | _old_names("postgresql")
    assert old <= ledger | budgets | admin
    assert {"0004_budgets", "0006_budget_lease_epochs"} == budgets
    assert "0007_admin_keys_org" in admin
    for s in ALL_MIGRATIONS:
        text = " ".join(stmt for m in s for stmt in (*(m.sqlite or ()), *(m.postgresql or ())))
        others = {"ledger": ("budget", "admin_keys"), "budgets": ("admin_keys",)}
        for word in others.get(s.component, ()):
            assert word not in text, (s.component, word)


def test_a_new_database_gets_the_same_tables_as_before_in_component_order(db_url: str) -> None:
    store = open_database(db_url, migrate=False)
    applied = store.migrate()
    dialect = store.dialect
    expected = [m.name for s in ALL_MIGRATIONS for m in s if m.statements(dialect) is not None]
    assert applied == expected
    assert store.migrate() == []
    new = _columns(store)
    store.close()
    assert set(new) == {
        "usage_events",
        "api_keys",
        "usage_dead_letters",
        "budgets",
        "budget_usage",
        "budget_leases",
        "budget_alerts",
        "budget_audit",
        "admin_keys",
        "usage_rollup_hourly",  # ledger.0007_rollups
        "usage_rollup_tasks",
        "usage_rollup_daily",
        "usage_rollup_daily_teams",
        "usage_rollup_state",
        "usage_rollup_pending",
        "dashboard_sessions",  # dashboard.0001_sessions
        "task_outcomes",  # tasks.0001_tasks
        "task_findings",
        "task_cap_usage",
        "task_cap_holds",
    }


def test_a_new_database_has_the_columns_of_an_old_one_after_migrating(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    new = open_database(db_url)
    if new.dialect == "sqlite":
        twin = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        twin = fresh_database(request.getfixturevalue("pg_admin_dsn"))
    _old_database(twin).close()
    old = open_database(twin)  # the migrations made after the split, run on the old tables
    assert _columns(new) == _columns(old)
    new.close()
    old.close()


def test_a_database_made_before_the_split_opens_without_rerunning_anything(db_url: str) -> None:
    old = _old_database(db_url)
    old.create_key(org="acme", team="research")
    _, team_secret = create_admin_key(old, org="acme", team="research", name="t")
    storage.set_budget(
        old, kind=BUDGET, scope="team:research", unit="usd", limit=5, period="month", hard=True
    )
    old.close()

    store = open_database(db_url)  # would fail on any CREATE TABLE run a second time
    with store.transaction() as cur:
        cur.execute("SELECT name FROM _migrations")
        recorded = {r[0] for r in cur.fetchall()}
    made_since = {
        "admin.0001_admin_keys",
        "ledger.0006_routing_and_task_columns",
        "ledger.0007_rollups",
        "dashboard.0001_sessions",
        "tasks.0001_tasks",
    }
    assert recorded == _old_names(store.dialect) | made_since
    assert store.migrate() == []
    who = authenticate(store, team_secret)
    assert (who.org, who.team) == ("acme", "research")
    budget = storage.get_budget(store, BUDGET, "team:research", "usd")
    assert budget is not None and budget.limit == 5
    store.close()


def test_a_database_from_before_lease_epochs_and_admin_orgs_is_brought_up(db_url: str) -> None:
    upto = {"0001_usage_events", "0002_api_keys", "0004_budgets", "0005_usage_dead_letters"}
    old = _old_database(db_url, upto | {"0003_append_only_sqlite", "0003_append_only_postgres"})
    old.create_key(org="acme", team="solo")
    with old.transaction() as cur:
        cur.execute(
            old.sql(
                "INSERT INTO admin_keys (key_id, secret_hash, prefix, name, team, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)"
            ),
            ("k1", "hash", "tka-k1…", "legacy", "solo", 1),
        )
        cur.execute(
            old.sql(
                "INSERT INTO budget_leases (budget_id, period_start_ms, holder, amount,"
                " heartbeat_ms) VALUES (?, ?, ?, ?, ?)"
            ),
            ("b1", 0, "h1", -3, 1),
        )
    old.close()

    store = open_database(db_url)
    with store.transaction() as cur:
        cur.execute("SELECT name FROM _migrations")
        recorded = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT epoch, amount FROM budget_leases")
        leases = cur.fetchall()
    assert {"0006_budget_lease_epochs", "0007_admin_keys_org"} <= recorded
    assert [tuple(r) for r in leases] == [(1, 0)]
    assert [(k.org, k.team) for k in list_admin_keys(store)] == [("acme", "solo")]
    store.close()


def test_the_ledger_alone_makes_only_its_own_tables(db_url: str) -> None:
    store = open_store(db_url)
    assert set(_columns(store)) == {
        "usage_events",
        "api_keys",
        "usage_dead_letters",
        "usage_rollup_hourly",
        "usage_rollup_tasks",
        "usage_rollup_daily",
        "usage_rollup_daily_teams",
        "usage_rollup_state",
        "usage_rollup_pending",
    }
    # Budgets and admin keys are added by their own sets, later, on the same database.
    assert apply_migrations(store, [BUDGET_MIGRATIONS, ADMIN_MIGRATIONS])[-1] == (
        "0007_admin_keys_org"
    )
    assert apply_migrations(store, [LEDGER_MIGRATIONS, BUDGET_MIGRATIONS]) == []
    store.close()


def test_two_sets_may_not_share_a_migration_name(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    clash = MigrationSet("other", (Migration.same("0002_api_keys", "SELECT 1"),))
    with pytest.raises(ValueError, match="0002_api_keys"):
        apply_migrations(store, [LEDGER_MIGRATIONS, clash])
    store.close()
