"""Outcomes and findings in the database, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from decimal import Decimal

from tokenomy.database import open_database
from tokenomy.tasks.shredder import Finding
from tokenomy.tasks.storage import (
    Outcome,
    findings,
    get_outcome,
    outcomes,
    record_findings,
    save_outcome,
    task_team,
)


def _outcome(status: str, oid: str = "", value: int | None = None) -> Outcome:
    return Outcome("acme", "t", "research", status, value, {"n": Decimal("1.5")}, "", oid, "k", 1)


def test_outcomes_replace_and_retries_change_nothing(db_url: str) -> None:
    store = open_database(db_url)
    try:
        assert task_team(store, "acme", "t") is None
        stored, replaced = save_outcome(store, _outcome("failed", "a", 5))
        assert not replaced and stored.status == "failed"
        stored, replaced = save_outcome(store, _outcome("succeeded", "a"))  # a retry
        assert not replaced and stored.status == "failed" and stored.value_nanos == 5
        stored, replaced = save_outcome(store, _outcome("succeeded", "b", 7))
        assert replaced
        got = get_outcome(store, "acme", "t")
        assert got is not None and (got.status, got.value_nanos) == ("succeeded", 7)
        assert got.metrics == {"n": Decimal("1.5")}
        assert list(outcomes(store, "acme")) == [("acme", "t")] and outcomes(store, "x") == {}
        assert task_team(store, "acme", "t") == "research"  # known by its outcome
    finally:
        store.close()


def test_findings_are_stored_once_per_task_and_kind(db_url: str) -> None:
    store = open_database(db_url)
    try:
        f = Finding("acme", "t", "research", "a", "retry_storm", "why", 10, 20, 1_000)
        g = Finding("acme", "t", "research", "a", "ping_pong", "why", 1, 2, 2_000)
        assert record_findings(store, [f, g]) == [f, g]
        assert record_findings(store, [f]) == []  # another replica found it too
        assert [x.kind for x in findings(store)] == ["retry_storm", "ping_pong"]
        assert [x.kind for x in findings(store, 1_500)] == ["ping_pong"]
    finally:
        store.close()
