"""PostgreSQL ledger: same schema and queries as SQLite, for many gateway replicas."""

from __future__ import annotations

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
    max_variables = 65_535  # the wire protocol's limit of parameters per statement
    # psycopg adapts a statement's parameters holding the GIL; its executemany pipelines
    # one-row statements and lets the event loop run between them.
    rows_per_statement = 1
    migrations = POSTGRES_MIGRATIONS
    day_expr = "to_char(to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def __init__(self, url: str) -> None:
        super().__init__(self._connect(url), url)

    @staticmethod
    def _connect(url: str) -> Any:
        import psycopg

        try:
            return psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to PostgreSQL ledger: {exc}") from exc

    def _insert_ignore(self, sql: str) -> str:
        return sql + " ON CONFLICT (id) DO NOTHING"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                # The server restarted or dropped us: reconnect rather than fail forever
                # (the batch writer and the budget office retry their work on error).
                self._conn = self._connect(self.url)
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
            except BaseException:
                if not self._conn.broken:
                    self._conn.rollback()
                raise
            finally:
                cur.close()

    def _lock_migrations(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
