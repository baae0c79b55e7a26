"""PostgreSQL ledger: same schema and queries as SQLite, for many gateway replicas.

Connection handling is built for a database that goes away: the connection is opened on
first use (a gateway starts while PostgreSQL is down and connects once it is back), broken
connections are reopened on the next call, connecting gives up after a few seconds, and a
call that hangs (a partition that swallows packets without resetting the connection) is
cut off by a watchdog that shuts the socket down, so the lock it holds is freed and the
callers' own retry and back-off take over. The server, for its part, ends a transaction
left idle by a vanished client after ``IDLE_TX_TIMEOUT_S``, freeing its row locks (keep it
well below the call timeout, so that other replicas waiting on those locks do not time out).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from tokenomy.errors import LedgerError
from tokenomy.ledger.store import Store

log = logging.getLogger("tokenomy.ledger")


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if 0 < value < 86_400 else default


# Longest a transaction may take before its connection is dropped (migrations included).
CALL_TIMEOUT_S = _env_seconds("TOKENOMY_DB_TIMEOUT_S", 15.0)
# The server ends a transaction left idle this long (a client cut off mid-transaction).
IDLE_TX_TIMEOUT_S = _env_seconds("TOKENOMY_DB_IDLE_TX_TIMEOUT_S", 5.0)
# libpq's connect_timeout (whole seconds, at least 2) unless the URL sets one.
CONNECT_TIMEOUT_S = max(2, int(_env_seconds("TOKENOMY_DB_CONNECT_TIMEOUT_S", 5.0)))


class PostgresStore(Store):
    dialect = "postgresql"
    placeholder = "%s"
    max_variables = 65_535  # the wire protocol's limit of parameters per statement
    # psycopg adapts a statement's parameters holding the GIL; its executemany pipelines
    # one-row statements and lets the event loop run between them.
    rows_per_statement = 1
    day_expr = "to_char(to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def __init__(self, url: str) -> None:
        super().__init__(None, url)  # connected on first use
        # Set when migrating at start-up failed (database down): done on first connect.
        self.migrate_on_connect = False

    @staticmethod
    def _connect(url: str) -> Any:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(url)
            extra: dict[str, Any] = {}
            if "connect_timeout" not in params:
                extra["connect_timeout"] = CONNECT_TIMEOUT_S
            options = str(params.get("options") or "")
            if "idle_in_transaction_session_timeout" not in options:
                # A client cut off mid-transaction (a partition) would hold its row locks,
                # and so stall every other replica, until the server noticed; this makes
                # the server end such a transaction well before the others' calls time out.
                idle_ms = max(100, int(IDLE_TX_TIMEOUT_S * 1000))
                extra["options"] = f"{options} -c idle_in_transaction_session_timeout={idle_ms}"
            return psycopg.connect(make_conninfo(url, **extra), autocommit=False)
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to PostgreSQL ledger: {exc}") from exc

    def _insert_ignore(self, sql: str) -> str:
        return sql + " ON CONFLICT (id) DO NOTHING"

    def _connection(self) -> Any:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            # First use, or the server restarted or dropped us: reconnect rather than fail
            # forever (the batch writer and the budget office retry their work on error).
            conn = self._conn = self._connect(self.url)
            if self.migrate_on_connect:
                self.migrate_on_connect = False
                try:
                    self.migrate()  # re-enters transaction(): the lock is re-entrant
                except BaseException:
                    self.migrate_on_connect = True
                    raise
        return conn

    @staticmethod
    def _cut(conn: Any) -> None:
        """Watchdog: a call hung; shut the socket down so the blocked read fails now."""
        log.error("database call exceeded %.1f s; dropping its connection", CALL_TIMEOUT_S)
        with suppress(Exception):
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            cur = conn.cursor()
            watchdog = threading.Timer(CALL_TIMEOUT_S, self._cut, (conn,))
            watchdog.daemon = True
            watchdog.start()
            try:
                yield cur
                conn.commit()
            except BaseException:
                if not conn.broken and not conn.closed:
                    with suppress(Exception):  # the original error is the one to see
                        conn.rollback()
                raise
            finally:
                watchdog.cancel()
                with suppress(Exception):
                    cur.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
