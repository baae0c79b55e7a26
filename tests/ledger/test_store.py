from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest

from tests.builders import usage_event
from tokenomy.errors import LedgerError
from tokenomy.events import Usage
from tokenomy.ledger import open_store
from tokenomy.ledger.reports import parse_fields, parse_time, usage_report
from tokenomy.money import nanos_to_usd


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


_event = partial(
    usage_event,
    ts_ms=_ms("2026-11-01T10:00:00"),
    org="acme",
    team="research",
    user="alice",
    key_id="k1",
    usage=Usage(input_tokens=1000, cached_tokens=200, output_tokens=300, reasoning_tokens=100),
    cost_nanos=1_234_567,
)


def test_events_round_trip_and_idempotent_insert(db_url: str) -> None:
    store = open_store(db_url)
    ev = _event(
        1,
        metadata={"ticket": "T-1"},
        agent="planner",
        step="plan",
        estimated=True,
        ttft_ms=12.5,
        usage=Usage(10, 2, 3, 1, 7, 4, 1, 2),
        cost_nanos=None,
    )
    store.insert_events([ev])
    store.insert_events([ev])  # journal replay inserts the same id again: ignored
    assert store.count_events() == 1
    assert store.get_event("e1") == ev
    store.close()


def test_ledger_is_append_only(db_url: str) -> None:
    store = open_store(db_url)
    store.insert_events([_event(1)])
    with pytest.raises(Exception, match="append-only"), store.transaction() as cur:
        cur.execute("UPDATE usage_events SET cost_nanos = 0")
    with pytest.raises(Exception, match="append-only"), store.transaction() as cur:
        cur.execute("DELETE FROM usage_events")
    assert store.get_event("e1") is not None
    store.close()


def test_migrations_are_recorded_and_run_once(db_url: str) -> None:
    store = open_store(db_url, migrate=False)
    first = store.migrate()
    assert first[0] == "0001_usage_events" and len(first) >= 3
    assert store.migrate() == []
    store.close()


def test_aggregate_groups_days_and_filters(db_url: str) -> None:
    store = open_store(db_url)
    store.insert_events(
        [
            _event(1),
            _event(2, team="ops", cost_nanos=1),
            _event(3, ts_ms=_ms("2026-11-02T23:59:59"), cost_nanos=None, estimated=True),
            _event(4, ts_ms=_ms("2026-11-03T00:00:00"), model="claude"),
        ]
    )
    rows = store.aggregate(None, None, ["day", "team"])
    assert [(r["day"], r["team"], r["requests"]) for r in rows] == [
        ("2026-11-01", "ops", 1),
        ("2026-11-01", "research", 1),
        ("2026-11-02", "research", 1),
        ("2026-11-03", "research", 1),
    ]
    day2 = rows[2]
    assert day2["unpriced_requests"] == 1 and day2["cost_nanos"] == 0
    assert day2["estimated_requests"] == 1
    total = store.aggregate(
        _ms("2026-11-01T00:00:00"), _ms("2026-11-03T00:00:00"), [], {"team": "research"}
    )
    assert total == [
        {
            "requests": 2,
            "input_tokens": 2000,
            "cached_tokens": 400,
            "cache_write_tokens": 0,
            "output_tokens": 600,
            "reasoning_tokens": 200,
            "estimated_requests": 1,
            "cost_nanos": 1_234_567,
            "unpriced_requests": 1,
        }
    ]
    assert store.aggregate(0, 1, ["team"]) == []
    with pytest.raises(LedgerError):
        store.aggregate(None, None, ["colour"])
    store.close()


def test_usage_report_cost_is_exact_decimal(db_url: str) -> None:
    store = open_store(db_url)
    store.insert_events([_event(i, cost_nanos=100_000_001) for i in range(3)])
    (row,) = usage_report(store, by=["model"])
    assert row["cost_usd"] == nanos_to_usd(300_000_003)
    assert str(row["cost_usd"]) == "0.300000003"
    store.close()


def test_keys_create_list_revoke(db_url: str) -> None:
    store = open_store(db_url)
    record, secret = store.create_key(org="acme", team="research", user="alice", name="laptop")
    assert secret.startswith("tk-" + record.key_id)
    table = store.key_table()
    principals = [p for p in table.values() if p is not None]
    assert [(p.org, p.team, p.user) for p in principals] == [("acme", "research", "alice")]
    assert secret not in str(table)  # only the hash is stored
    assert store.revoke_key(record.key_id) is True
    assert store.revoke_key(record.key_id) is False
    assert list(store.key_table().values()) == [None]
    assert store.list_keys()[0].revoked_ms is not None
    store.close()


def test_parse_time_and_fields() -> None:
    assert parse_time("2026-11-28") == _ms("2026-11-28T00:00:00")
    assert parse_time("2026-11-28", end_of_day=True) == _ms("2026-11-29T00:00:00")
    assert parse_time("2026-11-28T12:00:00Z") == _ms("2026-11-28T12:00:00")
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_time("7d", now=now) == _ms("2026-11-21T00:00:00")
    with pytest.raises(ValueError, match="relative"):
        parse_time("yesterday")
    assert parse_fields("team, model,day") == ["team", "model", "day"]
    with pytest.raises(ValueError, match="unknown field"):
        parse_fields("team,colour")


def test_postgres_store_reconnects_after_the_server_drops_it(pg_url: str) -> None:
    import psycopg

    store = open_store(pg_url)
    store.insert_events([_event(1)])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(psycopg.OperationalError):
        store.insert_events([_event(2)])  # the write in flight fails (the writer retries it)
    store.insert_events([_event(2)])  # ... and the retry goes through on a new connection
    assert store.count_events() == 2
    store.close()
