"""Task and value reports from the ledger and the outcomes (SQLite and PostgreSQL alike).

A task is the calls of one org carrying the same task id. Sub-tasks (calls with
``X-Tokenomy-Parent-Task``) roll up into their root task: its calls, tokens, cost and
value include theirs, and only root tasks are counted as tasks. The costs are the
ledger's to the nano-dollar, so the totals equal ``tokenomy usage --by task`` summed over
every task.

Value per group: cost per successful task is the cost of *all* tasks (failed ones
included) divided by the successes (cost-of-pass); tasks without an outcome are counted
apart (``tasks_without_outcome``) and still carry their cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tokenomy.budgets.periods import iso_utc
from tokenomy.events import Step
from tokenomy.ledger.store import Store
from tokenomy.money import nanos_to_usd
from tokenomy.tasks import storage
from tokenomy.tasks.storage import Outcome

STEP_KINDS = tuple(s.value for s in Step)
TASK_COLUMNS = (
    "task",
    "org",
    "team",
    "agent",
    "calls",
    "tokens",
    *(f"{s}_tokens" for s in STEP_KINDS),
    "cost_usd",
    "first_call",
    "last_call",
    "duration_s",
    "outcome",
    "value_usd",
    "subtasks",
)
VALUE_COLUMNS = (
    "tasks",
    "with_outcome",
    "succeeded",
    "failed",
    "success_rate",
    "cost_usd",
    "cost_per_task_usd",
    "cost_per_success_usd",
    "tokens",
    "tokens_per_success",
    "value_usd",
    "value_per_usd",
    "tasks_without_outcome",
)
VALUE_GROUPS = ("agent", "team", "model")
_NANO = Decimal("1e-9")
_RATE = Decimal("1e-4")
_MAX_DEPTH = 32


@dataclass(slots=True)
class TaskRow:
    org: str
    task: str
    team: str
    agent: str
    parent: str
    calls: int = 0
    tokens: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    cost: int = 0
    first_ms: int = 0
    last_ms: int = 0
    children: int = 0  # sub-tasks rolled into this one (all levels)
    value: int = 0  # the tree's outcome values, nano-USD
    outcome: Outcome | None = None
    models: dict[str, int] = field(default_factory=dict)  # model → cost (nano-USD)


def _where(since_ms: int | None, until_ms: int | None) -> tuple[str, list[Any]]:
    where, args = " WHERE task <> ''", []
    if since_ms is not None:
        where += " AND ts_ms >= ?"
        args.append(since_ms)
    if until_ms is not None:
        where += " AND ts_ms < ?"
        args.append(until_ms)
    return where, args


def _load(
    store: Store, since_ms: int | None, until_ms: int | None
) -> dict[tuple[str, str], TaskRow]:
    where, args = _where(since_ms, until_ms)
    steps = ", ".join(
        f"COALESCE(SUM(CASE WHEN step = '{s}' THEN input_tokens + output_tokens ELSE 0 END), 0)"
        for s in STEP_KINDS
    )
    sql = (
        "SELECT org, task, model, MIN(team), MIN(agent), MAX(parent_task), COUNT(*), "
        "COALESCE(SUM(input_tokens + output_tokens), 0), "
        f"{steps}, COALESCE(SUM(cost_nanos), 0), MIN(ts_ms), MAX(ts_ms + latency_ms) "
        f"FROM usage_events{where} GROUP BY org, task, model ORDER BY org, task, model"
    )
    with store.transaction() as cur:
        cur.execute(store.sql(sql), args)
        rows = cur.fetchall()
    out: dict[tuple[str, str], TaskRow] = {}
    n = len(STEP_KINDS)
    for r in rows:
        org, task, model, team, agent, parent = r[:6]
        t = out.get((org, task))
        if t is None:
            t = out[(org, task)] = TaskRow(org, task, team, agent, parent or "")
            t.first_ms = int(r[9 + n])
        t.parent = max(t.parent, parent or "")
        t.calls += int(r[6])
        t.tokens += int(r[7])
        for i, s in enumerate(STEP_KINDS):
            t.steps[s] = t.steps.get(s, 0) + int(r[8 + i])
        cost = int(r[8 + n])
        t.cost += cost
        t.models[model] = t.models.get(model, 0) + cost
        t.first_ms = min(t.first_ms, int(r[9 + n]))
        t.last_ms = max(t.last_ms, int(r[10 + n]))
    return out


def _root(rows: dict[tuple[str, str], TaskRow], t: TaskRow) -> TaskRow:
    seen = {t.task}
    while t.parent and t.parent not in seen and len(seen) < _MAX_DEPTH:
        up = rows.get((t.org, t.parent))
        if up is None:
            break
        seen.add(up.task)
        t = up
    return t


def rolled_up(
    store: Store, *, since_ms: int | None = None, until_ms: int | None = None
) -> list[TaskRow]:
    """Root tasks with their sub-tasks' calls, tokens, cost and value folded in."""
    rows = _load(store, since_ms, until_ms)
    outs = storage.outcomes(store)
    roots: dict[tuple[str, str], TaskRow] = {}
    for key, t in rows.items():
        r = _root(rows, t)
        rk = (r.org, r.task)
        acc = roots.get(rk)
        if acc is None:
            acc = roots[rk] = TaskRow(r.org, r.task, r.team, r.agent, "")
            acc.first_ms = t.first_ms
            acc.outcome = outs.get(rk)
        if key != rk:
            acc.children += 1
        acc.calls += t.calls
        acc.tokens += t.tokens
        for s, v in t.steps.items():
            acc.steps[s] = acc.steps.get(s, 0) + v
        acc.cost += t.cost
        for m, c in t.models.items():
            acc.models[m] = acc.models.get(m, 0) + c
        acc.first_ms = min(acc.first_ms, t.first_ms)
        acc.last_ms = max(acc.last_ms, t.last_ms)
        o = outs.get(key)
        if o is not None and o.value_nanos is not None:
            acc.value += o.value_nanos
    return sorted(roots.values(), key=lambda t: (t.first_ms, t.org, t.task))


def tasks_report(
    store: Store,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    agent: str | None = None,
    team: str | None = None,
) -> list[dict[str, Any]]:
    """One row per root task (sub-tasks rolled up), oldest first."""
    out = []
    for t in rolled_up(store, since_ms=since_ms, until_ms=until_ms):
        if (agent is not None and t.agent != agent) or (team is not None and t.team != team):
            continue
        row: dict[str, Any] = {
            "task": t.task,
            "org": t.org,
            "team": t.team,
            "agent": t.agent,
            "calls": t.calls,
            "tokens": t.tokens,
        }
        row.update({f"{s}_tokens": t.steps.get(s, 0) for s in STEP_KINDS})
        row.update(
            {
                "cost_usd": nanos_to_usd(t.cost),
                "first_call": iso_utc(t.first_ms, "milliseconds"),
                "last_call": iso_utc(t.last_ms, "milliseconds"),
                "duration_s": Decimal(max(t.last_ms - t.first_ms, 0)) / 1000,
                "outcome": t.outcome.status if t.outcome else "",
                "value_usd": nanos_to_usd(t.value) if t.value or t.outcome else None,
                "subtasks": t.children,
            }
        )
        out.append(row)
    return out


@dataclass(slots=True)
class _Group:
    tasks: int = 0
    with_outcome: int = 0
    succeeded: int = 0
    failed: int = 0
    cost: int = 0
    tokens: int = 0
    value: int = 0


def _ratio(a: Decimal | int, b: int | Decimal, q: Decimal) -> Decimal | None:
    if not b:
        return None
    return (Decimal(a) / Decimal(b)).quantize(q, rounding=ROUND_HALF_EVEN)


def value_report(
    store: Store,
    *,
    by: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Success, cost per success and value per USD, overall or per agent, team or model.

    ``--by model``: each model's own cost; a task (its success and value) counts under
    the model it spent most on.
    """
    if by is not None and by not in VALUE_GROUPS:
        raise ValueError(f"--by takes one of {', '.join(VALUE_GROUPS)}; got {by[:40]!r}")
    groups: dict[str, _Group] = {}
    for t in rolled_up(store, since_ms=since_ms, until_ms=until_ms):
        if by == "model":
            main = max(t.models.items(), key=lambda mc: (mc[1], mc[0]))[0] if t.models else ""
            for m, c in t.models.items():
                groups.setdefault(m, _Group()).cost += c
            key = main
        else:
            key = "" if by is None else (t.agent if by == "agent" else t.team)
        g = groups.setdefault(key, _Group())
        g.tasks += 1
        if by != "model":
            g.cost += t.cost
        g.tokens += t.tokens
        g.value += t.value
        if t.outcome is not None:
            g.with_outcome += 1
            g.succeeded += t.outcome.status == "succeeded"
            g.failed += t.outcome.status == "failed"
    rows = []
    for key in sorted(groups):
        g = groups[key]
        cost, value = nanos_to_usd(g.cost), nanos_to_usd(g.value)
        row: dict[str, Any] = {} if by is None else {by: key}
        row.update(
            {
                "tasks": g.tasks,
                "with_outcome": g.with_outcome,
                "succeeded": g.succeeded,
                "failed": g.failed,
                "success_rate": _ratio(g.succeeded, g.with_outcome, _RATE),
                "cost_usd": cost,
                "cost_per_task_usd": _ratio(cost, g.tasks, _NANO),
                "cost_per_success_usd": _ratio(cost, g.succeeded, _NANO),
                "tokens": g.tokens,
                "tokens_per_success": _ratio(g.tokens, g.succeeded, Decimal(1)),
                "value_usd": value,
                "value_per_usd": _ratio(value, cost, _RATE),
                "tasks_without_outcome": g.tasks - g.with_outcome,
            }
        )
        rows.append(row)
    if by is None and not rows:
        rows.append({**dict.fromkeys(VALUE_COLUMNS, 0), "cost_usd": Decimal(0)})
        for k in ("success_rate", "cost_per_task_usd", "cost_per_success_usd"):
            rows[0][k] = None
        for k in ("tokens_per_success", "value_per_usd"):
            rows[0][k] = None
        rows[0]["value_usd"] = Decimal(0)
    return rows


def shredder_report(store: Store, *, since_ms: int | None = None) -> list[dict[str, Any]]:
    """Findings, oldest first: task, agent, kind, evidence, tokens and cost at stake."""
    return [
        {
            "time": iso_utc(f.ts_ms, "milliseconds"),
            "org": f.org,
            "team": f.team,
            "task": f.task,
            "agent": f.agent,
            "kind": f.kind,
            "evidence": f.evidence,
            "tokens": f.tokens,
            "cost_usd": nanos_to_usd(f.cost_nanos),
        }
        for f in storage.findings(store, since_ms)
    ]


SHREDDER_COLUMNS = ("time", "task", "agent", "kind", "evidence", "tokens", "cost_usd")

__all__ = [
    "SHREDDER_COLUMNS",
    "TASK_COLUMNS",
    "VALUE_COLUMNS",
    "VALUE_GROUPS",
    "rolled_up",
    "shredder_report",
    "tasks_report",
    "value_report",
]
