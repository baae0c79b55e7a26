"""The rollups the dashboard reads equal the ledger: on insert, on replay, after backfill."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.dashboard.conftest import events
from tokenomy.database import open_database
from tokenomy.ledger import open_store
from tokenomy.ledger.rollups import HOUR_MS, LATENCY_BOUNDS_MS, refresh
from tokenomy.ledger.schema import LEDGER_MIGRATIONS, event_to_row
from tokenomy.ledger.store import Store, metadata_json
from tokenomy.sql import MigrationSet, apply_migrations


def _rollups(store: Store) -> dict[tuple[Any, ...], tuple[int, ...]]:
    refresh(store)
    with store.transaction() as cur:
        cur.execute(
            "SELECT hour_ms, org, team, model, agent, location, status, requests,"
            " input_tokens, cached_tokens, output_tokens, reasoning_tokens, cost_nanos,"
            " unpriced_requests, lat_le_25, lat_le_100, lat_le_1000, lat_le_10000, lat_inf"
            " FROM usage_rollup_hourly"
        )
        return {tuple(r[:7]): tuple(int(v) for v in r[7:]) for r in cur.fetchall()}


def _tasks(store: Store) -> dict[tuple[Any, ...], tuple[int, ...]]:
    refresh(store)
    with store.transaction() as cur:
        cur.execute(
            "SELECT hour_ms, org, team, agent, task, requests, errors, input_tokens,"
            " output_tokens, cost_nanos, first_ms, last_ms FROM usage_rollup_tasks"
        )
        return {tuple(r[:5]): tuple(int(v) for v in r[5:]) for r in cur.fetchall()}


def _daily_equals_hourly(store: Store) -> None:
    """The daily rollup holds the hourly one summed per UTC day."""
    cols = "org, team, model, agent, location, status, requests, cost_nanos, lat_inf"
    with store.transaction() as cur:
        cur.execute(f"SELECT hour_ms, {cols} FROM usage_rollup_daily")
        daily = {tuple(r[:7]): tuple(int(v) for v in r[7:]) for r in cur.fetchall()}
        cur.execute(
            "SELECT hour_ms - (hour_ms % 86400000), org, team, model, agent, location, status,"
            " SUM(requests), SUM(cost_nanos), SUM(lat_inf) FROM usage_rollup_hourly"
            " GROUP BY 1, 2, 3, 4, 5, 6, 7"
        )
        summed = {tuple(r[:7]): tuple(int(v) for v in r[7:]) for r in cur.fetchall()}
    assert daily == summed and daily
    with store.transaction() as cur:
        cur.execute(
            "SELECT hour_ms, org, team, location, status, requests, cost_nanos, lat_inf"
            " FROM usage_rollup_daily_teams"
        )
        teams = {tuple(r[:5]): tuple(int(v) for v in r[5:]) for r in cur.fetchall()}
        cur.execute(
            "SELECT hour_ms, org, team, location, status, SUM(requests), SUM(cost_nanos),"
            " SUM(lat_inf) FROM usage_rollup_daily GROUP BY 1, 2, 3, 4, 5"
        )
        assert teams == {tuple(r[:5]): tuple(int(v) for v in r[5:]) for r in cur.fetchall()}


def _expected(store: Store) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The rollups computed in Python from the stored events."""
    hourly: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 12)
    tasks: dict[tuple[Any, ...], list[int]] = {}
    buckets = (25, 100, 1000, 10000)
    for e in store.events():
        hour = e.ts_ms - e.ts_ms % HOUR_MS
        h = hourly[(hour, e.org, e.team, e.model, e.agent, e.location, e.status)]
        u = e.usage
        for i, v in enumerate(
            (1, u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens)
        ):
            h[i] += v
        h[5] += e.cost_nanos or 0
        h[6] += e.cost_nanos is None
        bounds = (0.0, *LATENCY_BOUNDS_MS)
        for j, b in enumerate(buckets):
            i = LATENCY_BOUNDS_MS.index(b)
            h[7 + j] += bounds[i] < e.latency_ms <= b
        h[11] += e.latency_ms > LATENCY_BOUNDS_MS[-1]
        if e.task:
            key = (hour, e.org, e.team, e.agent, e.task)
            t = tasks.setdefault(key, [0, 0, 0, 0, 0, e.ts_ms, e.ts_ms])
            t[0] += 1
            t[1] += not 200 <= e.status < 400
            t[2] += u.input_tokens
            t[3] += u.output_tokens
            t[4] += e.cost_nanos or 0
            t[5] = min(t[5], e.ts_ms)
            t[6] = max(t[6], e.ts_ms)
    return (
        {k: tuple(v) for k, v in hourly.items()},
        {k: tuple(v) for k, v in tasks.items()},
    )


def test_rollups_equal_the_ledger_and_a_replay_adds_nothing(db_url: str) -> None:
    store = open_database(db_url)
    evs = events(300)
    rows = [event_to_row(e, metadata_json(e.metadata)) for e in evs]
    store.insert_rows(rows[:120])
    assert refresh(store, chunk=7) == 120  # in chunks of 7 events
    store.insert_rows(rows[100:])  # overlaps: 20 events arrive twice (a journal replay)
    store.insert_rows(rows[:50])  # and again
    assert store.count_events() == 300
    hourly, tasks = _expected(store)
    assert _rollups(store) == hourly
    assert _tasks(store) == tasks
    _daily_equals_hourly(store)
    store.close()


def test_the_migration_fills_the_rollups_from_events_already_stored(db_url: str) -> None:
    before = MigrationSet(
        "ledger", tuple(m for m in LEDGER_MIGRATIONS if m.name != "ledger.0007_rollups")
    )
    store = open_store(db_url, migrate=False)
    apply_migrations(store, [before])
    store.insert_events(events(200, seed=3))
    assert store.migrate() == ["ledger.0007_rollups"]
    store.insert_events(events(50, seed=4))  # and the trigger takes over from there
    hourly, tasks = _expected(store)
    assert _rollups(store) == hourly
    assert _tasks(store) == tasks
    _daily_equals_hourly(store)
    store.close()
