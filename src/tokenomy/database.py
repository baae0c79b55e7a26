"""The shared database: every component's tables, migrated in one defined order.

The ledger, budgets and admin keys each own their tables (``ledger/schema.py``,
``budgets/schema.py``, ``admin/schema.py``); this is the one place that lists them all.
The gateway and the CLI open the database here, so both migrate the same sets in the
same order: the ledger's, then the budgets', then the admin keys'.
"""

from __future__ import annotations

from tokenomy.admin.schema import ADMIN_MIGRATIONS
from tokenomy.budgets.schema import BUDGET_MIGRATIONS
from tokenomy.dashboard.schema import DASHBOARD_MIGRATIONS
from tokenomy.ledger import open_store
from tokenomy.ledger.schema import LEDGER_MIGRATIONS
from tokenomy.ledger.store import Store
from tokenomy.sql import MigrationSet
from tokenomy.tasks.schema import TASK_MIGRATIONS

# After the ledger's own set, which ``open_store`` always applies first.
COMPONENT_MIGRATIONS: tuple[MigrationSet, ...] = (
    BUDGET_MIGRATIONS,
    ADMIN_MIGRATIONS,
    DASHBOARD_MIGRATIONS,  # sign-in sessions; after admin (they name admin keys)
    TASK_MIGRATIONS,  # outcomes, shredder findings, per-task cap accounting
)
ALL_MIGRATIONS: tuple[MigrationSet, ...] = (LEDGER_MIGRATIONS, *COMPONENT_MIGRATIONS)


def open_database(url: str, *, migrate: bool = True) -> Store:
    """Open the database at ``url`` with every component's tables (migrated unless told not)."""
    return open_store(url, migrate=migrate, components=COMPONENT_MIGRATIONS)


__all__ = ["ALL_MIGRATIONS", "COMPONENT_MIGRATIONS", "open_database"]
