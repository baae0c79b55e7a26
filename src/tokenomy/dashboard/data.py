"""What the dashboard shows, read from the rollups (``tokenomy.ledger.rollups``).

Every query here reads ``usage_rollup_hourly`` / ``usage_rollup_tasks`` over whole UTC
hours: the cost of a page view grows with the number of hours × groups in the range, never
with the number of events. Only the request log reads events, newest first by the
``ts_ms`` index, one page at a time.

Ranges are whole hours (``since`` rounded down, ``until`` up), so the totals equal
``tokenomy usage --since S --until U`` and the admin API's ``/usage`` for the same
hour-aligned range. Money is integer nano-USD until it leaves as an exact decimal string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy.admin import AdminPrincipal, access
from tokenomy.budgets import storage
from tokenomy.budgets.report import budget_rows
from tokenomy.config import Settings
from tokenomy.economics.factory import factory_cost
from tokenomy.economics.profiles import profile_from_table
from tokenomy.ledger import rollups
from tokenomy.ledger.rollups import (
    DAY_MS,
    HOUR_MS,
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    TOKEN_SUMS,
)
from tokenomy.ledger.store import Store
from tokenomy.money import decimal_str, nanos_to_usd

GROUPS = ("team", "model", "agent", "location")
MAX_SERIES = 8  # groups drawn one by one; the rest are summed as "(other)"
TOP = 10
REQUEST_FILTERS = {"key": "key_id", "model": "model", "status": "status", "task": "task"}
MAX_RANGE_MS = 400 * DAY_MS


@dataclass(frozen=True, slots=True)
class Range:
    """A whole-hour UTC range and the width of a chart bucket (an hour or a day)."""

    since_ms: int
    until_ms: int
    step_ms: int

    @classmethod
    def of(cls, since_ms: int, until_ms: int) -> Range:
        since = since_ms - since_ms % HOUR_MS
        until = -(-until_ms // HOUR_MS) * HOUR_MS
        if until <= since:
            until = since + HOUR_MS
        if until - since > MAX_RANGE_MS:
            raise ValueError("range: at most 400 days")
        step = HOUR_MS if until - since <= 3 * DAY_MS else DAY_MS
        return cls(since, until, step)


def scope_filters(who: AdminPrincipal) -> dict[str, str]:
    """org and team a team admin is bound to (nothing for a global admin)."""
    return access.usage_filters(who, {})


def usd(nanos: int) -> str:
    """Exact USD text of an amount in nano-USD (what the page and the API print)."""
    return decimal_str(nanos_to_usd(nanos))


def _where(rng: Range, filters: dict[str, str]) -> tuple[str, list[Any]]:
    clauses = ["hour_ms >= ?", "hour_ms < ?"]
    params: list[Any] = [rng.since_ms, rng.until_ms]
    for name, value in filters.items():
        if name not in ("org", "team"):
            raise ValueError(f"filter: {name!r} is not a rollup column")
        clauses.append(f"{name} = ?")
        params.append(value)
    return " WHERE " + " AND ".join(clauses), params


def _source(
    rng: Range,
    filters: dict[str, str],
    cols: Sequence[str] = ("*",),
    daily: str = "usage_rollup_daily",
) -> tuple[str, list[Any]]:
    """``FROM`` text and parameters for the range: whole UTC days from the daily rollup,
    the hours at either end from the hourly one (a range of up to 3 days: hourly only).

    ``cols``: the columns the query reads (the union carries only those); ``daily``: the
    daily table to read (``usage_rollup_daily_teams`` when model and agent are not needed).
    """
    first_day = -(-rng.since_ms // DAY_MS) * DAY_MS
    last_day = rng.until_ms - rng.until_ms % DAY_MS
    if rng.step_ms != DAY_MS or last_day <= first_day:
        where, params = _where(rng, filters)
        return f"usage_rollup_hourly{where}", params
    extra = "".join(f" AND {name} = ?" for name in filters)
    values = list(filters.values())
    _check(filters)
    return (
        f"(SELECT {', '.join(cols)} FROM {daily} WHERE hour_ms >= ? AND hour_ms < ?"
        f"{extra} UNION ALL SELECT {', '.join(cols)} FROM usage_rollup_hourly WHERE"
        f" ((hour_ms >= ? AND hour_ms < ?) OR (hour_ms >= ? AND hour_ms < ?)){extra}) r",
        [
            first_day,
            last_day,
            *values,
            rng.since_ms,
            first_day,
            last_day,
            rng.until_ms,
            *values,
        ],
    )


def _check(filters: dict[str, str]) -> None:
    for name in filters:
        if name not in ("org", "team"):
            raise ValueError(f"filter: {name!r} is not a rollup column")


_TOTAL_COLUMNS = (
    "location",
    "status",
    "requests",
    *TOKEN_SUMS,
    "cost_nanos",
    "unpriced_requests",
    "estimated_requests",
    *LATENCY_BUCKETS,
)
_SUMS = (
    "SUM(requests)",
    *(f"SUM({c})" for c in TOKEN_SUMS),
    "SUM(cost_nanos)",
    "SUM(unpriced_requests)",
    "SUM(estimated_requests)",
    "SUM(CASE WHEN status BETWEEN 200 AND 399 THEN 0 ELSE requests END)",
    *(f"SUM({c})" for c in LATENCY_BUCKETS),
)


# Positions in a row of _SUMS.
_INPUT_AT = 1 + TOKEN_SUMS.index("input_tokens")
_OUTPUT_AT = 1 + TOKEN_SUMS.index("output_tokens")
_COST_AT = 1 + len(TOKEN_SUMS)


def _totals(row: Sequence[Any]) -> dict[str, Any]:
    vals = [int(v or 0) for v in row]
    n = len(TOKEN_SUMS)
    requests, tokens = vals[0], vals[1 : 1 + n]
    cost, unpriced, estimated, errors = vals[1 + n : 5 + n]
    hist = vals[5 + n :]
    out: dict[str, Any] = {"requests": requests}
    out.update(dict(zip(TOKEN_SUMS, tokens, strict=True)))
    out.update(
        {
            "cost_usd": usd(cost),
            "cost_nanos": cost,
            "unpriced_requests": unpriced,
            "estimated_requests": estimated,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "p50_ms": percentile(hist, 0.50),
            "p99_ms": percentile(hist, 0.99),
        }
    )
    return out


def percentile(hist: list[int], q: float) -> float | None:
    """The ``q`` quantile (ms) of a latency histogram over ``LATENCY_BOUNDS_MS``.

    Interpolated linearly inside the bucket that holds it (as Prometheus'
    ``histogram_quantile`` does); the open last bucket answers its lower bound.
    None for an empty histogram.
    """
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            low = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
            if i == len(LATENCY_BOUNDS_MS):
                return low
            high = float(LATENCY_BOUNDS_MS[i])
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


def summary(store: Store, who: AdminPrincipal, rng: Range, by: str) -> dict[str, Any]:
    """Totals, the stacked series by ``by``, top agents and tasks, and the cloud/local mix."""
    if by not in GROUPS:
        raise ValueError(f"by: one of {', '.join(GROUPS)}")
    rollups.refresh(store)  # SQLite: roll up what arrived since the last look
    where, params = _where(rng, scope_filters(who))
    # Integer division, not %: psycopg reads % as a placeholder (hours are positive).
    bucket = f"((hour_ms / {rng.step_ms}) * {rng.step_ms})"
    cell_cols = ("hour_ms", by, "cost_nanos", "input_tokens", "output_tokens", "requests")
    # Team and location need neither model nor agent: the small daily table holds them.
    cell_daily = "usage_rollup_daily_teams" if by in ("team", "location") else "usage_rollup_daily"
    cell_src, cell_params = _source(rng, scope_filters(who), cell_cols, cell_daily)
    total_src, total_params = _source(
        rng, scope_filters(who), _TOTAL_COLUMNS, "usage_rollup_daily_teams"
    )
    with store.transaction() as cur:
        # Totals per location: their sum is the totals, and they are the cloud/local mix.
        cur.execute(
            store.sql(f"SELECT location, {', '.join(_SUMS)} FROM {total_src} GROUP BY 1"),
            total_params,
        )
        per_location = [(str(r[0]), [int(v or 0) for v in r[1:]]) for r in cur.fetchall()]
        cur.execute(
            store.sql(
                f"SELECT {bucket}, {by}, SUM(cost_nanos), SUM(input_tokens + output_tokens),"
                f" SUM(requests) FROM {cell_src} GROUP BY 1, 2"
            ),
            cell_params,
        )
        cells = cur.fetchall()
        cur.execute(
            store.sql(
                "SELECT task, agent, SUM(cost_nanos), SUM(requests), SUM(errors),"
                " SUM(input_tokens + output_tokens) FROM usage_rollup_tasks"
                f"{where} GROUP BY task, agent ORDER BY 3 DESC, 1 LIMIT {TOP}"
            ),
            params,
        )
        tasks = cur.fetchall()
    # The groups' totals are the sums of their cells over time (one query less).
    sums: dict[str, list[int]] = {}
    for _t, g, cost, tok, req in cells:
        acc = sums.setdefault(str(g), [0, 0, 0])
        acc[0] += int(cost)
        acc[1] += int(tok)
        acc[2] += int(req)
    groups = sorted(
        ((g, c, tok, req) for g, (c, tok, req) in sums.items()),
        key=lambda x: (-x[1], -x[2], x[0]),
    )
    shown = [g[0] for g in groups[:MAX_SERIES]]
    # Day buckets start at UTC midnight: the first one may begin before ``since``.
    times = list(range(rng.since_ms - rng.since_ms % rng.step_ms, rng.until_ms, rng.step_ms))
    index = {t: i for i, t in enumerate(times)}
    names = [*shown, *(["(other)"] if len(groups) > MAX_SERIES else [])]
    cost_series = {n: [0] * len(times) for n in names}
    token_series = {n: [0] * len(times) for n in names}
    for t, g, cost, tok, _req in cells:
        name = str(g) if str(g) in cost_series and str(g) != "(other)" else "(other)"
        if name not in cost_series or int(t) not in index:
            continue
        cost_series[name][index[int(t)]] += int(cost)
        token_series[name][index[int(t)]] += int(tok)
    return {
        "since_ms": rng.since_ms,
        "until_ms": rng.until_ms,
        "step_ms": rng.step_ms,
        "by": by,
        "totals": _totals(
            [sum(col) for col in zip(*(v for _, v in per_location), strict=True)]
            if per_location
            else [0] * len(_SUMS)
        ),
        "times": times,
        "series": [
            {
                "name": n or "(none)",
                "cost_usd": [usd(v) for v in cost_series[n]],
                "tokens": token_series[n],
            }
            for n in names
        ],
        "groups": [
            {"name": g or "(none)", "cost_usd": usd(c), "tokens": tok, "requests": req}
            for g, c, tok, req in groups[:TOP]
        ],
        "top_tasks": [
            {
                "task": t,
                "agent": a or "(none)",
                "cost_usd": usd(int(c)),
                "requests": int(n),
                "errors": int(e),
                "tokens": int(tok),
            }
            for t, a, c, n, e, tok in tasks
        ],
        "mix": _mix(
            [(loc, v[_COST_AT], v[_INPUT_AT], v[_OUTPUT_AT], v[0]) for loc, v in per_location]
        ),
        "top_agents": (
            [
                {"agent": g or "(none)", "cost_usd": usd(c), "requests": req, "tokens": tok}
                for g, c, tok, req in groups[:TOP]
            ]
            if by == "agent"  # the groups are the agents: no second query
            else top_agents(store, who, rng)
        ),
    }


def top_agents(store: Store, who: AdminPrincipal, rng: Range) -> list[dict[str, Any]]:
    """The agents that cost the most in the range."""
    cols = ("agent", "cost_nanos", "requests", "input_tokens", "output_tokens")
    src, params = _source(rng, scope_filters(who), cols)
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                "SELECT agent, SUM(cost_nanos), SUM(requests), SUM(input_tokens + output_tokens)"
                f" FROM {src} GROUP BY agent ORDER BY 2 DESC, 1 LIMIT {TOP}"
            ),
            params,
        )
        rows = cur.fetchall()
    return [
        {"agent": a or "(none)", "cost_usd": usd(int(c)), "requests": int(n), "tokens": int(t)}
        for a, c, n, t in rows
    ]


def _mix(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Cloud vs local: cost and tokens of each, and what local tokens saved.

    Savings are estimated: the local lane's input and output tokens priced at the range's
    average cloud price per input and per output token (cost split by token share), minus
    what the local lane cost. None when there were no cloud tokens to compare with.
    """
    by_loc: dict[str, tuple[int, int, int, int]] = {}
    for loc, cost, tin, tout, req in rows:
        key = "local" if loc == "local" else "cloud"
        c0, i0, o0, r0 = by_loc.get(key, (0, 0, 0, 0))
        by_loc[key] = (c0 + int(cost), i0 + int(tin), o0 + int(tout), r0 + int(req))
    cloud = by_loc.get("cloud", (0, 0, 0, 0))
    local = by_loc.get("local", (0, 0, 0, 0))
    savings: str | None = None
    cloud_tokens = cloud[1] + cloud[2]
    if cloud_tokens and (local[1] + local[2]):
        per_token = Decimal(cloud[0]) / cloud_tokens  # nano-USD per token, blended
        at_cloud = per_token * (local[1] + local[2])
        savings = usd(int(at_cloud) - local[0])
    return {
        "cloud": {
            "cost_usd": usd(cloud[0]),
            "cost_nanos": cloud[0],
            "tokens": cloud[1] + cloud[2],
            "requests": cloud[3],
        },
        "local": {
            "cost_usd": usd(local[0]),
            "cost_nanos": local[0],
            "tokens": local[1] + local[2],
            "requests": local[3],
        },
        "local_savings_usd": savings,
    }


def budgets(store: Store, tz: str, now_ms: int) -> list[dict[str, Any]]:
    """Every budget with spend, projected exhaustion and a daily burn-down.

    Status and projection come from ``tokenomy.budgets.report.budget_rows`` (the budgets
    room's one truth, which reads the ledger: the dashboard computes this in the background
    and serves it cached, see ``web.py``). The burn-down is cumulative spend per day of the
    period, from the rollups, for scopes the rollups hold (org, team, agent).
    """
    rollups.refresh(store)
    rows = budget_rows(store, tz=tz, now_ms=now_ms)
    starts = {
        (st.budget.scope, st.budget.unit, st.budget.kind): st.period_start
        for st in storage.status(store, storage.list_budgets(store), tz, now_ms)
    }
    out = []
    for r in rows:
        start = starts.get((r["scope"], r["unit"], r["kind"]))
        kind, _, value = str(r["scope"]).partition(":")
        burn: list[dict[str, Any]] = []
        if (
            start is not None
            and kind in ("org", "team", "agent")
            and r["unit"] in ("usd", "tokens")
        ):
            burn = _burn_down(store, kind, value, str(r["unit"]), start, now_ms)
        item = {k: (decimal_str(v) if isinstance(v, Decimal) else v) for k, v in r.items()}
        item["burn_down"] = burn
        out.append(item)
    return out


def visible_budgets(
    store: Store, who: AdminPrincipal, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of ``budgets`` that ``who`` may see (the admin API's team-admin rule)."""
    scopes = access.scopes_for(store, who)
    return [r for r in rows if scopes.allows(str(r["scope"]))]


def _burn_down(
    store: Store, kind: str, value: str, unit: str, start_ms: int, now_ms: int
) -> list[dict[str, Any]]:
    start = start_ms - start_ms % HOUR_MS
    measure = "SUM(cost_nanos)" if unit == "usd" else "SUM(input_tokens + output_tokens)"
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                f"SELECT ((hour_ms / {DAY_MS}) * {DAY_MS}), {measure} FROM usage_rollup_hourly"
                f" WHERE hour_ms >= ? AND hour_ms <= ? AND {kind} = ? GROUP BY 1 ORDER BY 1"
            ),
            (start, now_ms, value),
        )
        rows = cur.fetchall()
    total = 0
    out = []
    for day, amount in rows:
        total += int(amount)
        out.append({"day_ms": int(day), "spent": usd(total) if unit == "usd" else total})
    return out


def factories(settings: Settings, local_cost_nanos: int) -> list[dict[str, Any]]:
    """Each configured factory's hourly cost split (chips / electricity / operations) and
    the range's local spend split in the same shares."""
    out = []
    for name, table in settings.factories.items():
        try:
            cost = factory_cost(profile_from_table(name, table))
        except ValueError as exc:
            out.append({"name": name, "error": str(exc)})
            continue
        per_hour = cost.cost_per_hour
        parts = {
            "chips": cost.capex_per_hour,
            "electricity": cost.electricity_per_hour,
            "operations": cost.ops_per_hour,
        }
        local = nanos_to_usd(local_cost_nanos)
        row: dict[str, Any] = {
            "name": name,
            "gpus": cost.profile.gpus,
            "cost_per_hour_usd": decimal_str(per_hour.quantize(Decimal("0.0001"))),
            "split_per_hour_usd": {
                k: decimal_str(v.quantize(Decimal("0.0001"))) for k, v in parts.items()
            },
            "shares": {
                k: decimal_str((v / per_hour).quantize(Decimal("0.0001"))) if per_hour else "0"
                for k, v in parts.items()
            },
            "local_spend_split_usd": {
                k: decimal_str((local * v / per_hour).quantize(Decimal("0.000001")))
                if per_hour
                else "0"
                for k, v in parts.items()
            },
        }
        out.append(row)
    return out


_LOG_COLUMNS = (
    "id",
    "ts_ms",
    "key_id",
    "team",
    "agent",
    "task",
    "model",
    "deployment",
    "location",
    "status",
    "error_kind",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "latency_ms",
)


def request_log(
    store: Store,
    who: AdminPrincipal,
    filters: dict[str, str],
    *,
    since_ms: int | None = None,
    before_ms: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest requests (a page of ``limit``), filtered by key, model, status, task.

    ``since_ms`` bounds how far back a rare filter makes the ``ts_ms`` index scan go.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in filters.items():
        column = REQUEST_FILTERS.get(name)
        if column is None:
            raise ValueError(f"filter: one of {', '.join(REQUEST_FILTERS)}")
        if not value:
            continue
        if name == "status":
            if not value.isdigit() or len(value) > 3:
                raise ValueError("status: an HTTP status such as 200 or 429")
            params.append(int(value))
        else:
            if len(value) > 200:
                raise ValueError(f"{name}: at most 200 characters")
            params.append(value)
        clauses.append(f"{column} = ?")
    for name, value in scope_filters(who).items():
        clauses.append(f"{name} = ?")
        params.append(value)
    if since_ms is not None:
        clauses.append("ts_ms >= ?")
        params.append(since_ms)
    if before_ms is not None:
        clauses.append("ts_ms < ?")
        params.append(before_ms)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with store.transaction() as cur:
        cur.execute(
            store.sql(
                f"SELECT {', '.join(_LOG_COLUMNS)} FROM usage_events{where}"
                f" ORDER BY ts_ms DESC LIMIT {max(1, min(int(limit), 500))}"
            ),
            params,
        )
        rows = cur.fetchall()
    out = []
    for r in rows:
        rec = dict(zip(_LOG_COLUMNS, r, strict=True))
        cost = rec.pop("cost_nanos")
        rec["cost_usd"] = None if cost is None else usd(int(cost))
        out.append(rec)
    return out


SUCCESS = "succeeded"  # tokenomy.tasks.storage.STATUSES


def task_value(store: Store, who: AdminPrincipal, rng: Range) -> list[dict[str, Any]] | None:
    """Per agent: tasks in the range, how many succeeded, their value and cost per success.

    None while the tasks room's outcome table is missing or holds no outcome. A task's
    cost is what its calls in the range cost (from ``usage_rollup_tasks``, not the raw
    events that ``tokenomy value`` reads); cost per success is the cost of all tasks over
    the successes (cost-of-pass, as ``tokenomy value``); value is what successful outcomes
    recorded. Unlike ``tokenomy value``, sub-agent tasks count as tasks of their own here.
    """
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM _migrations WHERE name = 'tasks.0001_tasks'")
        if not int(cur.fetchone()[0]):
            return None
        cur.execute("SELECT 1 FROM task_outcomes LIMIT 1")
        if cur.fetchone() is None:  # no outcome recorded yet: nothing to say about value
            return None
        where, params = _where(rng, scope_filters(who))
        cur.execute(
            store.sql(
                "SELECT t.agent, COUNT(*),"
                f" SUM(CASE WHEN o.status = '{SUCCESS}' THEN 1 ELSE 0 END), SUM(t.cost),"
                f" SUM(CASE WHEN o.status = '{SUCCESS}' THEN COALESCE(o.value_nanos, 0) ELSE 0"
                " END) FROM (SELECT org, task, agent, SUM(cost_nanos) AS cost"
                f" FROM usage_rollup_tasks{where} GROUP BY org, task, agent) t"
                " LEFT JOIN task_outcomes o ON o.org = t.org AND o.task = t.task"
                f" GROUP BY t.agent ORDER BY 4 DESC, 1 LIMIT {TOP}"
            ),
            params,
        )
        rows = cur.fetchall()
    out = []
    for agent, tasks, ok, cost, value in rows:
        ok, cost, value = int(ok or 0), int(cost or 0), int(value or 0)
        out.append(
            {
                "agent": agent or "(none)",
                "tasks": int(tasks),
                "successful": ok,
                "cost_usd": usd(cost),
                "value_usd": usd(value),
                "cost_per_success_usd": usd(cost // ok) if ok else None,
                "value_per_success_usd": usd(value // ok) if ok else None,
            }
        )
    return out


__all__ = [
    "GROUPS",
    "Range",
    "budgets",
    "factories",
    "percentile",
    "request_log",
    "scope_filters",
    "summary",
    "task_value",
    "top_agents",
    "usd",
    "visible_budgets",
]
