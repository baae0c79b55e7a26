"""deploy/grafana/tokenomy.json: every query names a metric (and labels) /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tokenomy.config import MetricsSection
from tokenomy.events import Usage, UsageEvent
from tokenomy.observe.metrics import FAMILIES, Metrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "tokenomy.json"
_METRIC = re.compile(r"\btokenomy_[a-z_]+\b")
_BY = re.compile(r"\bby \(([^)]*)\)")
_MATCHERS = re.compile(r"(tokenomy_[a-z_]+)\{([^}]*)\}")
_FUNCTIONS = {"le"}  # histogram_quantile's bucket label


def _queries(node: Any) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets and template variables."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                out.append(value)
            elif key == "query" and isinstance(value, dict) and "query" in value:
                out.append(value["query"])
            else:
                out += _queries(value)
    elif isinstance(node, list):
        for item in node:
            out += _queries(item)
    return out


def _exposed() -> dict[str, set[str]]:
    """Sample name → label names, from a /metrics with a sample in every family."""
    engine = SimpleNamespace(
        tz="UTC",
        in_flight=lambda: [(SimpleNamespace(scope="team:a", unit="usd"), 5)],
    )
    m = Metrics(
        MetricsSection().labels,
        budgets=engine,  # type: ignore[arg-type]
        breakers=lambda: {"oai/gpt-4o": False},
    )
    m._budget_rows = [("team:a", "usd", "month", 1.5)]
    ev = UsageEvent(
        id="r", ts_ms=0, api_format="openai", endpoint="chat.completions", model="m", status=200
    )
    ev.usage, ev.ttft_ms, ev.fallback_reason = Usage(1, output_tokens=1), 50.0, "breaker_open"
    m.on_event(ev, 0.001)
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def test_every_query_names_an_exposed_metric() -> None:
    exposed = _exposed()
    for family in FAMILIES:  # the check below is only as good as this: all are there
        assert any(name.startswith(family.removesuffix("_total")) for name in exposed), family
    queries = _queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 15
    used: set[str] = set()
    for query in queries:
        names = _METRIC.findall(query)
        assert names, query
        for name in names:
            assert name in exposed, f"{name} in {query!r} is not exposed"
        used.update(names)
        labels = {label for name in names for label in exposed[name]} | _FUNCTIONS
        for group in _BY.findall(query):
            for label in (x.strip() for x in group.split(",")):
                assert label in labels, f"by ({label}) in {query!r}"
        for name, matchers in _MATCHERS.findall(query):
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                assert label in exposed[name], f"{label} of {name} in {query!r}"
    # Every family is on the dashboard.
    for family in FAMILIES:
        assert any(u.startswith(family.removesuffix("_total")) for u in used), family
