"""PostgreSQL ledger: same schema and queries as SQLite, for many gateway replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tokenomy.errors import LedgerError
from tokenomy.ledger.schema import POSTGRES_MIGRATIONS
from tokenomy.ledger.store import Store

# Serialises concurrent migrations from replicas starting together.
_MIGRATION_LOCK_ID = 0x746F6B656E


class PostgresStore(Store):
    dialect = "postgresql"
    placeholder = "%s"
    day_expr = "to_char(to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def __init__(self, url: str) -> None:
        import psycopg

        try:
            conn = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to PostgreSQL ledger: {exc}") from exc
        super().__init__(conn, url)

    def _insert_ignore(self, sql: str) -> str:
        return sql + " ON CONFLICT (id) DO NOTHING"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS _migrations "
                "(name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            )
            cur.execute("SELECT name FROM _migrations")
            done = {r[0] for r in cur.fetchall()}
            for name, statements in POSTGRES_MIGRATIONS:
                if name in done:
                    continue
                for stmt in statements:
                    cur.execute(stmt)
                cur.execute(
                    "INSERT INTO _migrations VALUES (%s, %s)", (name, int(time.time() * 1000))
                )
                applied.append(name)
        return applied
