"""What routing saved: the local lane against the cloud, and cheapest-first against priority.

Both are counterfactuals priced event by event: each call's recorded usage is re-priced at
the deployment it would otherwise have gone to, at the call's own timestamp, with the same
price book that priced the ledger (tiers, cache prices and dated catalog prices included).
The two figures:

* **Local lane.** Calls served by a ``location = "local"`` deployment: their recorded cost
  (the factory's production cost) against the cheapest *allowed* cloud deployment of the
  same model. Allowed means the data policy lets that call's data class (and team) go there;
  a model whose calls may not leave the premises gets no cloud figure, and says why.
* **Cheapest routing.** Calls of ``strategy = "cheapest"`` models: their recorded cost
  against the deployment ``priority`` routing would have picked (the first allowed one in
  the config's order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokenomy.config import Deployment, Provider, Settings
from tokenomy.events import Usage
from tokenomy.ledger.store import Store
from tokenomy.money import nanos_to_usd
from tokenomy.pricing.book import PriceBook

# (data_class, provider, org, team) -> may a call of that class from that team go there?
Allowed = Callable[[str, Provider, str, str], bool]

_COLUMNS = (
    "ts_ms",
    "org",
    "team",
    "model",
    "location",
    "data_class",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "cost_nanos",
)


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    actual_nanos: int = 0
    unpriced: int = 0  # calls without a recorded cost: left out of both sides
    # candidate deployment name -> re-priced nanos; None once any call can't go there
    alternatives: dict[str, int | None] = field(default_factory=dict)
    priority_names: set[str] = field(default_factory=set)  # what priority would have used


@dataclass(frozen=True, slots=True)
class SavingsRow:
    kind: str  # "local_lane" | "cheapest_routing"
    model: str
    data_class: str
    requests: int
    input_tokens: int
    output_tokens: int
    actual_usd: Decimal
    baseline: str  # the deployment compared with ("" when none is allowed)
    baseline_usd: Decimal | None
    saved_usd: Decimal | None
    unpriced_requests: int
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "data_class": self.data_class,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "actual_usd": self.actual_usd,
            "baseline": self.baseline,
            "baseline_usd": self.baseline_usd,
            "saved_usd": self.saved_usd,
            "unpriced_requests": self.unpriced_requests,
            "note": self.note,
        }


_PRIORITY = "priority"


def deployment_name(dep: Deployment) -> str:
    return f"{dep.provider.name}/{dep.model}"


def _rows(store: Store, since_ms: int | None, until_ms: int | None) -> Iterator[tuple[Any, ...]]:
    clauses, params = ["status < 400"], []
    if since_ms is not None:
        clauses.append("ts_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        clauses.append("ts_ms < ?")
        params.append(until_ms)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM usage_events WHERE {' AND '.join(clauses)}"
    with store.transaction() as cur:
        cur.execute(store.sql(sql), params)
        while batch := cur.fetchmany(5000):
            yield from batch


def savings(
    store: Store,
    settings: Settings,
    book: PriceBook,
    allowed: Allowed,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[SavingsRow]:
    """Local-lane and cheapest-routing savings over the ledger's successful calls."""
    tallies: dict[tuple[str, str, str], _Tally] = {}
    for r in _rows(store, since_ms, until_ms):
        ts_ms, org, team, model_name, location, data_class = r[:6]
        model = settings.models.get(model_name)
        if model is None:
            continue  # a model no longer configured: nothing to compare it with
        if location == "local":
            kind = "local_lane"
            candidates = [d for d in model.deployments if d.provider.location != "local"]
        elif model.strategy == "cheapest":
            kind = "cheapest_routing"
            candidates = list(model.deployments)
        else:
            continue
        tally = tallies.setdefault((kind, model_name, data_class), _Tally())
        usage = Usage(*(int(v or 0) for v in r[6:14]))
        cost = r[14]
        if cost is None:
            tally.unpriced += 1
            continue
        tally.requests += 1
        tally.input_tokens += usage.input_tokens
        tally.output_tokens += usage.output_tokens
        tally.actual_nanos += int(cost)
        permitted = [d for d in candidates if allowed(data_class, d.provider, org, team)]
        if kind == "cheapest_routing":
            # What priority routing would have done: the first allowed deployment in order.
            first = permitted[0] if permitted else None
            before = tally.alternatives.get(_PRIORITY, 0)
            if first is None or before is None:
                tally.alternatives[_PRIORITY] = None
                continue
            tally.priority_names.add(deployment_name(first))
            priced = book.price(first, usage, int(ts_ms)).cost_nanos
            tally.alternatives[_PRIORITY] = None if priced is None else before + priced
            continue
        for dep in candidates:
            name = deployment_name(dep)
            before = tally.alternatives.get(name, 0)
            if before is None:
                continue
            if not any(dep is p for p in permitted):
                tally.alternatives[name] = None  # one call that may not go there rules it out
                continue
            priced = book.price(dep, usage, int(ts_ms)).cost_nanos
            tally.alternatives[name] = None if priced is None else before + priced
    return [_row(key, tally) for key, tally in sorted(tallies.items())]


def _row(key: tuple[str, str, str], tally: _Tally) -> SavingsRow:
    kind, model, data_class = key
    priced = {name: n for name, n in tally.alternatives.items() if n is not None}
    actual = nanos_to_usd(tally.actual_nanos)
    baseline, baseline_usd, saved, note = "", None, None, ""
    if kind == "local_lane" and not tally.alternatives:
        note = "the model has no cloud deployment to compare with"
    elif not priced:
        why = "data policy" if kind == "local_lane" else "data policy or missing price"
        note = f"no cloud deployment allowed for {data_class or 'unclassified'} calls ({why})"
    else:
        best = min(priced, key=lambda name: (priced[name], name))
        baseline_usd = nanos_to_usd(priced[best])
        baseline = best
        if best == _PRIORITY:
            baseline = "priority: " + ", ".join(sorted(tally.priority_names))
        saved = baseline_usd - actual
    if tally.unpriced:
        note = (note + "; " if note else "") + f"{tally.unpriced} unpriced calls left out"
    return SavingsRow(
        kind,
        model,
        data_class,
        tally.requests,
        tally.input_tokens,
        tally.output_tokens,
        actual,
        baseline,
        baseline_usd,
        saved,
        tally.unpriced,
        note,
    )
