"""``event_to_row`` is total: whatever an event holds, its row is journaled and stored.

The gateway refuses bad input before the upstream is called; this is the last line for
what arrives after it answered (an upstream's error text, request id, usage numbers).
"""

from __future__ import annotations

import math

import orjson

from tests.builders import usage_event
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger.schema import DROPPED_METADATA, EVENT_COLUMNS, event_to_row, storable_text


def _hostile() -> UsageEvent:
    return usage_event(
        1,
        org="acme\x00",
        agent="agent-\udcff",  # a header byte aiohttp decoded with surrogateescape
        task="t\ud800ask",  # a lone surrogate that is no escaped byte
        end_user="u" * 5000,
        model="m\x00\udcfe",
        error_message="bad\x00thing " + "x" * 10_000,
        upstream_request_id="req-\udcff\udcfe-" + "r" * 1000,
        usage=Usage(input_tokens=1 << 70, output_tokens=-(1 << 70)),
        cost_nanos=1 << 64,
        latency_ms=math.nan,
        ttft_ms=math.inf,
    )


def test_a_clean_event_passes_unchanged() -> None:
    ev = usage_event(1, agent="planner", end_user="ü-user", usage=Usage(10, 2), cost_nanos=5)
    row = event_to_row(ev, '{"a": 1}')
    assert len(row) == len(EVENT_COLUMNS)
    assert row[EVENT_COLUMNS.index("agent")] == "planner"
    assert row[EVENT_COLUMNS.index("end_user")] == "ü-user"
    assert row[EVENT_COLUMNS.index("metadata")] == '{"a": 1}'
    assert row[EVENT_COLUMNS.index("cost_nanos")] == 5


def test_a_hostile_event_becomes_a_storable_row() -> None:
    row = dict(zip(EVENT_COLUMNS, event_to_row(_hostile(), "x\x00" * 50_000), strict=True))
    orjson.dumps(list(row.values()))  # the journal's serialization: must not raise
    for name, value in row.items():
        if isinstance(value, str):
            assert "\x00" not in value, name
            value.encode("utf-8")  # no lone surrogates left
    assert row["agent"] == "agent-\ufffd"
    assert row["model"] == "m\ufffd"
    assert row["org"] == "acme"
    assert len(row["end_user"]) <= 1024 and len(row["upstream_request_id"]) <= 256
    assert row["error_message"].startswith("badthing ")
    assert row["input_tokens"] == (1 << 63) - 1 and row["output_tokens"] == -(1 << 63)
    assert row["cost_nanos"] == (1 << 63) - 1
    assert row["latency_ms"] == 0.0 and row["ttft_ms"] is None
    assert orjson.loads(row["metadata"]) == {"tokenomy_dropped": "metadata not storable"}


def test_odd_types_never_raise() -> None:
    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no")

    ev = usage_event(1, usage=None, status="200", cost_nanos=2.5, latency_ms="fast")
    ev.agent = Weird()  # type: ignore[assignment]
    ev.ts_ms = True
    row = dict(zip(EVENT_COLUMNS, event_to_row(ev, None), strict=True))
    assert row["agent"] == "<unprintable Weird>"
    assert (row["status"], row["cost_nanos"], row["latency_ms"], row["ts_ms"]) == (0, 2, 0.0, 1)
    assert row["input_tokens"] == 0
    assert storable_text(None) == "" and storable_text(12) == "12"


def test_hostile_rows_insert_on_both_databases(db_url: str) -> None:
    store = open_store(db_url)
    try:
        store.insert_rows([event_to_row(_hostile(), '{"k": "v\\u0000"}')])
        (ev,) = store.events()
        assert ev.agent == "agent-\ufffd"
        assert ev.usage.input_tokens == (1 << 63) - 1
        assert ev.metadata == {"k": "v\x00"}
    finally:
        store.close()


def test_metadata_that_cannot_be_serialized_becomes_a_marker_not_an_error() -> None:
    """metadata_json runs after the upstream answered: it must not raise either."""
    from tokenomy.ledger.store import metadata_json

    assert metadata_json({"n": 1 << 70}) == DROPPED_METADATA
    assert metadata_json({1: "non-str key"}) == DROPPED_METADATA
    assert metadata_json({"ok": "yes"}) == '{"ok":"yes"}'
    assert metadata_json(None) is None
