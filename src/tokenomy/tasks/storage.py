"""Task state in the shared database: outcomes and shredder findings (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from tokenomy import clock
from tokenomy.ledger.store import Store
from tokenomy.tasks.shredder import Finding

STATUSES = ("succeeded", "failed", "abandoned", "indeterminate")


@dataclass(frozen=True, slots=True)
class Outcome:
    org: str
    task: str
    team: str
    status: str
    value_nanos: int | None
    metrics: dict[str, Decimal]
    note: str
    outcome_id: str
    key_id: str
    recorded_ms: int


_OUTCOME_COLUMNS = (
    "org, task, team, status, value_nanos, metrics, note, outcome_id, key_id, recorded_ms"
)


def _outcome(r: Any) -> Outcome:
    metrics = {k: Decimal(v) for k, v in orjson.loads(r[5] or "{}").items()}
    value = int(r[4]) if r[4] is not None else None
    return Outcome(r[0], r[1], r[2], r[3], value, metrics, r[6], r[7], r[8], int(r[9]))


def task_team(store: Store, org: str, task: str) -> str | None:
    """The team whose calls form the task (its first call's), or None: no such task."""
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "SELECT team FROM usage_events WHERE org = ? AND task = ? ORDER BY ts_ms LIMIT 1"
            ),
            (org, task),
        )
        r = cur.fetchone()
        if r is None:  # its calls not flushed yet, but an outcome already recorded
            cur.execute(
                store.sql("SELECT team FROM task_outcomes WHERE org = ? AND task = ?"),
                (org, task),
            )
            r = cur.fetchone()
    return None if r is None else str(r[0])


def get_outcome(store: Store, org: str, task: str) -> Outcome | None:
    with store.transaction() as cur:
        cur.execute(
            store.sql(f"SELECT {_OUTCOME_COLUMNS} FROM task_outcomes WHERE org = ? AND task = ?"),
            (org, task),
        )
        r = cur.fetchone()
    return _outcome(r) if r else None


def save_outcome(store: Store, o: Outcome) -> tuple[Outcome, bool]:
    """Record ``o``, replacing the task's previous outcome; ``(stored, replaced)``.

    The same ``outcome_id`` posted again changes nothing and returns what is stored
    (a client retrying after a lost answer), inside the same transaction as the check.
    """
    metrics = orjson.dumps({k: str(v) for k, v in o.metrics.items()}).decode()
    with store.transaction() as cur:
        cur.execute(
            store.sql(f"SELECT {_OUTCOME_COLUMNS} FROM task_outcomes WHERE org = ? AND task = ?"),
            (o.org, o.task),
        )
        r = cur.fetchone()
        if r is not None:
            old = _outcome(r)
            if o.outcome_id and old.outcome_id == o.outcome_id:
                return old, False
            cur.execute(
                store.sql("DELETE FROM task_outcomes WHERE org = ? AND task = ?"), (o.org, o.task)
            )
        cur.execute(
            store.sql(
                f"INSERT INTO task_outcomes ({_OUTCOME_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                o.org,
                o.task,
                o.team,
                o.status,
                o.value_nanos,
                metrics,
                o.note,
                o.outcome_id,
                o.key_id,
                o.recorded_ms,
            ),
        )
    return o, r is not None


def outcomes(store: Store, org: str | None = None) -> dict[tuple[str, str], Outcome]:
    with store.transaction() as cur:
        if org is None:
            cur.execute(f"SELECT {_OUTCOME_COLUMNS} FROM task_outcomes")
        else:
            cur.execute(
                store.sql(f"SELECT {_OUTCOME_COLUMNS} FROM task_outcomes WHERE org = ?"), (org,)
            )
        return {(o.org, o.task): o for o in map(_outcome, cur.fetchall())}


def record_findings(store: Store, found: list[Finding]) -> list[Finding]:
    """Store findings; returns those stored for the first time (once per task and kind,
    across every replica), which are the ones to alert on."""
    first: list[Finding] = []
    with store.transaction() as cur:
        for f in found:
            cur.execute(
                store.sql(
                    "INSERT INTO task_findings (org, task, kind, team, agent, ts_ms, evidence,"
                    " tokens, cost_nanos) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (org, task, kind) DO NOTHING"
                ),
                (
                    f.org,
                    f.task,
                    f.kind,
                    f.team,
                    f.agent,
                    f.ts_ms or clock.now_ms(),
                    f.evidence[:2000],
                    f.tokens,
                    f.cost_nanos,
                ),
            )
            if cur.rowcount:
                first.append(f)
    return first


def findings(store: Store, since_ms: int | None = None) -> list[Finding]:
    sql = (
        "SELECT org, task, team, agent, kind, evidence, tokens, cost_nanos, ts_ms "
        "FROM task_findings"
    )
    args: tuple[Any, ...] = ()
    if since_ms is not None:
        sql += " WHERE ts_ms >= ?"
        args = (since_ms,)
    with store.transaction() as cur:
        cur.execute(store.sql(sql + " ORDER BY ts_ms, org, task, kind"), args)
        rows = cur.fetchall()
    return [
        Finding(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), int(r[8])) for r in rows
    ]


__all__ = [
    "STATUSES",
    "Outcome",
    "findings",
    "get_outcome",
    "outcomes",
    "record_findings",
    "save_outcome",
    "task_team",
]
