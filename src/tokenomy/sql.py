"""SQL plumbing every component shares: the database protocol and the migration runner.

Each component (the ledger, budgets, admin keys) owns its tables and declares them as one
named, ordered :class:`MigrationSet` in its own ``schema.py``, the way sqlite-utils does it.
:func:`apply_migrations` runs the pending ones of several sets, in the order given, in one
transaction, recording each by name in ``_migrations (name, applied_ms)``. A migration never
changes once released; add a new one. Names are unique across all sets (the table has no
set column, for compatibility with databases made before the sets were split): the names
released before the split are kept (``0001_usage_events`` … ``0007_admin_keys_org``); new
ones start with their component (``admin.0001_admin_keys``).

This module imports no component: components import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenomy.clock import now_ms

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# Serialises concurrent migrations from PostgreSQL replicas starting together.
MIGRATION_LOCK_ID = 0x746F6B656E

Statements = tuple[str, ...]


class Database(Protocol):
    """What a component's storage code needs from a store: a transaction and its dialect."""

    @property
    def dialect(self) -> str: ...

    def transaction(self) -> AbstractContextManager[Any]:
        """A DB-API cursor inside one transaction (committed on success)."""
        ...

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in the dialect's style."""
        ...


@dataclass(frozen=True, slots=True)
class Migration:
    """One named step: its statements, per dialect when they differ.

    ``None`` for a dialect: the step is not part of that dialect (not run, not recorded).
    """

    name: str
    sqlite: Statements | None
    postgresql: Statements | None

    @classmethod
    def same(cls, name: str, *statements: str) -> Migration:
        """A migration whose SQL is the same on both dialects."""
        return cls(name, statements, statements)

    def statements(self, dialect: str) -> Statements | None:
        if dialect == SQLITE:
            return self.sqlite
        if dialect == POSTGRESQL:
            return self.postgresql
        raise ValueError(f"unknown SQL dialect {dialect!r}")


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """A component's tables: its migrations, in the order they run."""

    component: str
    migrations: tuple[Migration, ...] = field(default=())

    def __iter__(self) -> Iterator[Migration]:
        return iter(self.migrations)

    def __getitem__(self, name: str) -> Migration:
        for m in self.migrations:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.migrations]


def _check_unique(sets: Sequence[MigrationSet]) -> None:
    seen: dict[str, str] = {}
    for s in sets:
        for name in s.names:
            if name in seen:
                raise ValueError(
                    f"migration {name!r} is in both {seen[name]!r} and {s.component!r}"
                )
            seen[name] = s.component


def apply_migrations(db: Database, sets: Sequence[MigrationSet]) -> list[str]:
    """Apply the pending migrations of ``sets``, set by set, in one transaction.

    Returns the names applied. On PostgreSQL a transaction-scoped advisory lock keeps
    replicas that start together from migrating twice.
    """
    _check_unique(sets)
    applied: list[str] = []
    with db.transaction() as cur:
        if db.dialect == POSTGRESQL:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS _migrations "
            "(name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
        )
        cur.execute("SELECT name FROM _migrations")
        done = {r[0] for r in cur.fetchall()}
        record = db.sql("INSERT INTO _migrations VALUES (?, ?)")
        for migration_set in sets:
            for m in migration_set:
                statements = m.statements(db.dialect)
                if m.name in done or statements is None:
                    continue
                for stmt in statements:
                    cur.execute(stmt)
                cur.execute(record, (m.name, now_ms()))
                applied.append(m.name)
    return applied


__all__ = [
    "MIGRATION_LOCK_ID",
    "POSTGRESQL",
    "SQLITE",
    "Database",
    "Migration",
    "MigrationSet",
    "apply_migrations",
]
