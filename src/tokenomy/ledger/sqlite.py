"""SQLite ledger (the zero-config default): WAL, one writer, readers never block it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tokenomy.errors import LedgerError
from tokenomy.ledger.store import Store


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise LedgerError(f"not a SQLite URL: {url!r} (expected sqlite:///PATH)")
    return url[len("sqlite:///") :]


class SqliteStore(Store):
    dialect = "sqlite"
    placeholder = "?"
    max_variables = 32_766  # SQLite's default limit per statement (3.32+)
    day_expr = "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')"

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives process crashes; the gateway's journal covers the rest.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # Checkpoint the WAL less often: fewer stalls of the batch writer under load.
            conn.execute("PRAGMA wal_autocheckpoint=10000")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open SQLite ledger {path!r}: {exc}") from exc
        self.path = path
        super().__init__(conn, url)

    def _insert_ignore(self, sql: str) -> str:
        return sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
