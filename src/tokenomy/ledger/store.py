"""The ledger store: one implementation of every query over a DB-API connection.

SQLite and PostgreSQL differ only in a few details (placeholders, date functions,
"insert or ignore", connections); those live in ``sqlite.py`` and ``postgres.py``.
Other components sharing the database (budgets, admin keys) write their SQL with
``Store.sql`` inside ``Store.transaction`` and declare their tables as migration sets.
Reports are written once, here, against this class.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from tokenomy.clock import now_ms
from tokenomy.errors import LedgerError
from tokenomy.events import Principal, UsageEvent
from tokenomy.ledger.schema import (
    DROPPED_METADATA,
    EVENT_COLUMNS,
    GROUP_FIELDS,
    LEDGER_MIGRATIONS,
    REPORT_GROUPS,
    Row,
    event_to_row,
    row_to_event,
)
from tokenomy.sql import MigrationSet, apply_migrations

KEY_PREFIX = "tk"

SUM_COLUMNS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: never the secret, only its hash and a display prefix."""

    key_id: str
    prefix: str
    name: str
    org: str
    team: str
    user: str
    created_ms: int
    revoked_ms: int | None

    @property
    def principal(self) -> Principal:
        return Principal(self.key_id, self.org, self.team, self.user, self.name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "name": self.name,
            "org": self.org,
            "team": self.team,
            "user": self.user,
            "created_ms": self.created_ms,
            "revoked": self.revoked_ms is not None,
            "revoked_ms": self.revoked_ms,
        }


def hash_secret(secret: str) -> str:
    """API keys are high-entropy random strings, so one SHA-256 is the right hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def metadata_json(meta: dict[str, Any] | None) -> str | None:
    """The event's metadata as JSON text. Never raises: what cannot be serialized (the
    gateway refuses it before the upstream, but this runs after the upstream answered)
    becomes a marker that says so."""
    if not meta:
        return None
    try:
        return orjson.dumps(meta).decode()
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return DROPPED_METADATA


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A journal line the database refused, kept instead of blocking the rows after it.

    ``encoding`` is ``json`` (``line`` is the event row as a JSON array, ready to retry) or
    ``base64`` (the raw journal line, which could not be decoded).
    """

    seq: int | None
    event_id: str
    quarantined_ms: int
    source: str  # "runtime" | "replay"
    error: str
    encoding: str
    line: str
    resolved: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "quarantined_ms": self.quarantined_ms,
            "source": self.source,
            "error": self.error,
            "resolved": self.resolved,
            "encoding": self.encoding,
            "line": self.line,
        }


def dead_letter(row: Any, error: str, source: str, raw: bytes | None = None) -> DeadLetter:
    """A storable dead letter for a refused row (or an unreadable raw journal line)."""
    event_id = ""
    if isinstance(row, tuple | list) and row and isinstance(row[0], str):
        event_id = storable_text(row[0])[:200]
    line: str | None = None
    encoding = "json"
    if raw is None:
        try:
            line = orjson.dumps(row).decode()
        except (TypeError, ValueError):
            raw = repr(row).encode("utf-8", "backslashreplace")
    if line is None:
        encoding = "base64"
        line = base64.b64encode(raw or b"").decode()
    return DeadLetter(None, event_id, now_ms(), source, storable_text(error)[:500], encoding, line)


def storable_text(text: str) -> str:
    """Text every backend stores: no NUL, valid UTF-8 (lone surrogates escaped)."""
    return text.replace("\x00", "").encode("utf-8", "backslashreplace").decode("utf-8")


def describe_error(exc: BaseException) -> str:
    """A short reason for a refused row (first line of the driver's message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def is_data_error(exc: BaseException) -> bool:
    """True when the database (or its driver) refused the data itself, not the connection.

    Retrying such a row can never succeed; a connection error (database down, disk full on
    the server) is retried with the row kept.
    """
    if isinstance(exc, TypeError | ValueError | OverflowError):  # binding / adapting a value
        return True
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
            return True
        return type(exc) is sqlite3.ProgrammingError and "closed" not in str(exc)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return True
        # The base class itself is raised client side for values it cannot adapt; its
        # subclasses are server errors such as a missing table, which no row causes.
        return type(exc) is psycopg.ProgrammingError
    return False


def _length(row: Any) -> int:
    return len(row) if isinstance(row, tuple | list) else 0


class Store:
    """Usage events and API keys in one SQL database (sync DB-API; thread-safe via a lock)."""

    dialect: ClassVar[str]
    placeholder: ClassVar[str]
    max_variables: ClassVar[int]
    rows_per_statement: ClassVar[int] = 1_000
    day_expr: ClassVar[str]
    url: str

    def __init__(self, conn: Any, url: str) -> None:
        self._conn = conn
        self.url = url
        self._lock = threading.RLock()
        self._multi_insert: dict[int, str] = {}  # rows per statement → SQL
        # What ``migrate`` applies (also on a PostgreSQL reconnect): the ledger's tables,
        # then those of the components sharing this database.
        self.migration_sets: tuple[MigrationSet, ...] = (LEDGER_MIGRATIONS,)

    # -- dialect hooks -------------------------------------------------------------------
    def _insert_ignore(self, sql: str) -> str:
        raise NotImplementedError

    def migrate(self) -> list[str]:
        """Apply the pending migrations of ``migration_sets`` in order; return those applied.

        The ledger's own set comes first; ``open_store(..., components=...)`` adds the sets
        of the components that share the database (budgets, admin keys).
        """
        return apply_migrations(self, self.migration_sets)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction, committed on success, rolled back on error."""
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in this dialect's style (``%s`` on PostgreSQL).

        The one way other components' storage code writes parameterised SQL for a store.
        """
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # -- events --------------------------------------------------------------------------
    def insert_rows(self, rows: Sequence[Row]) -> None:
        """Insert event rows in one transaction; rows whose id exists are ignored (replay).

        Multi-row INSERTs, one statement per chunk: the batch writer runs beside the event
        loop, and a statement per row means a GIL hand-over (and for PostgreSQL a message)
        per row, which stalls the loop.
        """
        if not rows:
            return
        per = min(self.max_variables // len(EVENT_COLUMNS), self.rows_per_statement)
        if per == 1:  # the driver batches single-row statements itself (psycopg pipelines)
            with self.transaction() as cur:
                cur.executemany(self._single_insert(), rows)
            return
        with self.transaction() as cur:
            for i in range(0, len(rows), per):
                chunk = rows[i : i + per]
                sql = self._multi_insert.get(len(chunk))
                if sql is None:
                    marks = "(" + ", ".join([self.placeholder] * len(EVENT_COLUMNS)) + ")"
                    sql = self._multi_insert[len(chunk)] = self._insert_ignore(
                        f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) VALUES "
                        + ", ".join([marks] * len(chunk))
                    )
                cur.execute(sql, [v for row in chunk for v in row])

    def _single_insert(self) -> str:
        sql = self._multi_insert.get(1)
        if sql is None:
            marks = "(" + ", ".join([self.placeholder] * len(EVENT_COLUMNS)) + ")"
            sql = self._multi_insert[1] = self._insert_ignore(
                f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) VALUES {marks}"
            )
        return sql

    def insert_or_isolate(self, rows: Sequence[Row]) -> list[tuple[Row, str]]:
        """Insert rows like ``insert_rows``; rows the database refuses are left out.

        When a batch fails on its data (not on the connection), it is split in halves until
        the refused rows are isolated: they never block the rows beside them. Returns the
        refused rows with a short reason; connection errors propagate (retry later).
        """
        refused: list[tuple[Row, str]] = []
        good: list[Row] = []
        for row in rows:
            if isinstance(row, tuple | list) and len(row) == len(EVENT_COLUMNS):
                good.append(row)
            else:
                expected = len(EVENT_COLUMNS)
                refused.append((row, f"row has {_length(row)} fields, expected {expected}"))
        self._insert_bisect(good, refused)
        return refused

    def _insert_bisect(self, rows: list[Row], refused: list[tuple[Row, str]]) -> None:
        if not rows:
            return
        try:
            self.insert_rows(rows)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(rows) == 1:
                refused.append((rows[0], describe_error(exc)))
                return
            mid = len(rows) // 2
            self._insert_bisect(rows[:mid], refused)
            self._insert_bisect(rows[mid:], refused)

    # -- dead letters (rows the database refused) ----------------------------------------
    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Quarantine refused rows; a letter already stored (same event and line) is skipped."""
        sql = self.sql(
            "INSERT INTO usage_dead_letters"
            " (event_id, quarantined_ms, source, error, encoding, line)"
            " SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM usage_dead_letters WHERE event_id = ? AND line = ?)"
        )
        with self.transaction() as cur:
            for d in letters:
                cur.execute(
                    sql,
                    (
                        d.event_id,
                        d.quarantined_ms,
                        d.source,
                        d.error,
                        d.encoding,
                        d.line,
                        d.event_id,
                        d.line,
                    ),
                )

    def dead_letters(self, *, include_resolved: bool = False) -> list[DeadLetter]:
        """Quarantined rows, oldest first; resolved = an event with that id is now stored."""
        resolved = "EXISTS (SELECT 1 FROM usage_events e WHERE e.id = d.event_id)"
        sql = (
            "SELECT d.seq, d.event_id, d.quarantined_ms, d.source, d.error, d.encoding, d.line,"
            f" {resolved} FROM usage_dead_letters d"
        )
        if not include_resolved:
            sql += f" WHERE NOT {resolved}"
        with self.transaction() as cur:
            cur.execute(sql + " ORDER BY d.seq")
            return [
                DeadLetter(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6], bool(r[7]))
                for r in cur.fetchall()
            ]

    def count_dead_letters(self) -> int:
        """Quarantined rows not yet resolved."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM usage_dead_letters d WHERE NOT EXISTS"
                " (SELECT 1 FROM usage_events e WHERE e.id = d.event_id)"
            )
            return int(cur.fetchone()[0])

    def retry_dead_letters(self) -> tuple[int, int]:
        """Insert the quarantined rows that the database now takes: (inserted, still refused).

        Rows whose id is already stored stay ignored (the ledger is append-only).
        """
        letters = [d for d in self.dead_letters() if d.encoding == "json"]
        rows: list[Row] = []
        for d in letters:
            try:
                value = orjson.loads(d.line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, list):
                rows.append(tuple(value))
        refused = self.insert_or_isolate(rows)
        return len(rows) - len(refused), len(letters) - len(rows) + len(refused)

    def insert_events(self, events: Iterable[UsageEvent]) -> None:
        self.insert_rows([event_to_row(e, metadata_json(e.metadata)) for e in events])

    def count_events(self) -> int:
        with self.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM usage_events")
            return int(cur.fetchone()[0])

    def get_event(self, event_id: str) -> UsageEvent | None:
        with self.transaction() as cur:
            cur.execute(
                self.sql(f"SELECT {', '.join(EVENT_COLUMNS)} FROM usage_events WHERE id = ?"),
                (event_id,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        meta = row[EVENT_COLUMNS.index("metadata")]
        return row_to_event(tuple(row), orjson.loads(meta) if meta else None)

    def events(
        self, since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None
    ) -> list[UsageEvent]:
        where, params = self._where(since_ms, until_ms, None)
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM usage_events{where} ORDER BY ts_ms, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.transaction() as cur:
            cur.execute(self.sql(sql), params)
            rows = cur.fetchall()
        meta_i = EVENT_COLUMNS.index("metadata")
        return [
            row_to_event(tuple(r), orjson.loads(r[meta_i]) if r[meta_i] else None) for r in rows
        ]

    def _where(
        self, since_ms: int | None, until_ms: int | None, filters: dict[str, str] | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since_ms is not None:
            clauses.append("ts_ms >= ?")
            params.append(since_ms)
        if until_ms is not None:
            clauses.append("ts_ms < ?")
            params.append(until_ms)
        for name, value in (filters or {}).items():
            if name not in GROUP_FIELDS:
                raise LedgerError(
                    f"cannot filter on {name!r}; use one of {', '.join(GROUP_FIELDS)}"
                )
            clauses.append(f"{GROUP_FIELDS[name]} = ?")
            params.append(int(value) if name == "status" else value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def aggregate(
        self,
        since_ms: int | None,
        until_ms: int | None,
        by: Sequence[str],
        filters: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Totals grouped by report fields (``day`` = UTC date of the request).

        Each row: the group fields, ``requests``, token sums, ``estimated_requests``,
        ``cost_nanos`` (sum over priced events) and ``unpriced_requests``.
        """
        for name in by:
            if name not in REPORT_GROUPS:
                raise LedgerError(f"cannot group by {name!r}; use {', '.join(REPORT_GROUPS)}")
        group_exprs = [self.day_expr if name == "day" else GROUP_FIELDS[name] for name in by]
        select = [f"{expr} AS g{i}" for i, expr in enumerate(group_exprs)]
        sums = [f"COALESCE(SUM({c}), 0)" for c in SUM_COLUMNS]
        select += [
            "COUNT(*)",
            *sums,
            "COALESCE(SUM(estimated), 0)",
            "COALESCE(SUM(cost_nanos), 0)",
            "COALESCE(SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), 0)",
        ]
        where, params = self._where(since_ms, until_ms, filters)
        sql = f"SELECT {', '.join(select)} FROM usage_events{where}"
        if by:
            positions = ", ".join(str(i + 1) for i in range(len(by)))
            sql += f" GROUP BY {positions} ORDER BY {positions}"
        with self.transaction() as cur:
            cur.execute(self.sql(sql), params)
            rows = cur.fetchall()
        out: list[dict[str, Any]] = []
        for r in rows:
            n = len(by)
            rec: dict[str, Any] = {name: r[i] for i, name in enumerate(by)}
            rec["requests"] = int(r[n])
            if rec["requests"] == 0:
                continue  # an aggregate over no rows still returns one row of zeros
            for j, col in enumerate(SUM_COLUMNS):
                rec[col] = int(r[n + 1 + j])
            rec["estimated_requests"] = int(r[n + 1 + len(SUM_COLUMNS)])
            rec["cost_nanos"] = int(r[n + 2 + len(SUM_COLUMNS)])
            rec["unpriced_requests"] = int(r[n + 3 + len(SUM_COLUMNS)])
            out.append(rec)
        return out

    # -- API keys ------------------------------------------------------------------------
    def create_key(
        self, *, org: str, team: str = "", user: str = "", name: str = ""
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the secret, which is shown only once."""
        if not org:
            raise LedgerError("a key needs an org")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(24)}"
        record = ApiKey(
            key_id,
            secret[: len(KEY_PREFIX) + 1 + len(key_id) + 5] + "…",
            name,
            org,
            team,
            user,
            now_ms(),
            None,
        )
        with self.transaction() as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO api_keys (key_id, secret_hash, prefix, name, org, team, user_id,"
                    " created_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                ),
                (
                    key_id,
                    hash_secret(secret),
                    record.prefix,
                    name,
                    org,
                    team,
                    user,
                    record.created_ms,
                ),
            )
        return record, secret

    def list_keys(self, include_revoked: bool = True, team: str | None = None) -> list[ApiKey]:
        sql = (
            "SELECT key_id, prefix, name, org, team, user_id, created_ms, revoked_ms FROM api_keys"
        )
        clauses, params = [], []
        if not include_revoked:
            clauses.append("revoked_ms IS NULL")
        if team is not None:
            clauses.append("team = ?")
            params.append(team)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self.transaction() as cur:
            cur.execute(self.sql(sql + " ORDER BY created_ms, key_id"), params)
            return [ApiKey(*r) for r in cur.fetchall()]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has that id."""
        with self.transaction() as cur:
            cur.execute(
                self.sql(
                    "UPDATE api_keys SET revoked_ms = ? WHERE key_id = ? AND revoked_ms IS NULL"
                ),
                (now_ms(), key_id),
            )
            return bool(cur.rowcount)

    def find_key(self, secret_hash: str) -> tuple[bool, Principal | None]:
        """(exists, principal); principal is None for a revoked key."""
        with self.transaction() as cur:
            cur.execute(
                self.sql(
                    "SELECT key_id, org, team, user_id, name, revoked_ms FROM api_keys "
                    "WHERE secret_hash = ?"
                ),
                (secret_hash,),
            )
            r = cur.fetchone()
        if r is None:
            return False, None
        k, o, t, u, n, revoked = r
        return True, (None if revoked is not None else Principal(k, o, t, u, n))

    def key_table(self) -> dict[str, Principal | None]:
        """secret hash → principal (None for revoked keys), for the gateway's in-memory cache."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT secret_hash, key_id, org, team, user_id, name, revoked_ms FROM api_keys"
            )
            return {
                h: (None if revoked is not None else Principal(k, o, t, u, n))
                for h, k, o, t, u, n, revoked in cur.fetchall()
            }
